"""The evaluation measures what a model prefers BY CONTENT, whatever the position or label of an option.

ProgressGym's logprob path credited each candidate to the wrong action (reference defect D2) and its text mode
credited letters by position (D21): a position bias looked like a value, and opposite content preferences gave
the same vector. Here:

1. scripted models that read our prompt text and prefer options by what they say, or by where they stand,
   get the mirror vector when their preference flips and exactly zero when they only like a position or label;
2. the same holds, within a stated tolerance, for a real tiny transformer trained for a few steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scripted_models import ScriptedBackend, breaks_rules, keeps_rules, prefers_view, utility_table
from toy_bank import toy_bank

from progressgym.evaluation.banks import load_bank
from progressgym.evaluation.dimensions import WORLDVIEWS
from progressgym.evaluation.evaluator import evaluate_with_backend
from progressgym.evaluation.items import ItemBank, Scenario
from progressgym.evaluation.prompts import bank_prompts

OFFICIAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "progressgym-moralevals"
RULE_DIMS, FOUNDATION_DIMS, VIEW_DIMS = slice(0, 10), slice(10, 15), slice(15, 19)
MODERN = 15 + WORLDVIEWS.index("modern")


def _banks() -> list[ItemBank]:
    banks = [toy_bank(), load_bank("core", split="evaluation")]
    if OFFICIAL.is_dir():
        banks.append(load_bank("progressgym", path=OFFICIAL, split="evaluation"))
    return banks


BANKS = _banks()


def _content_model(bank: ItemBank, per_action, **kwargs) -> ScriptedBackend:
    table = utility_table(bank, per_action)
    return ScriptedBackend(utility=lambda context, option: table[(context, option)], **kwargs)


def _vector(backend, bank, mode="logprob"):
    return evaluate_with_backend(backend, bank, mode=mode, progress=False).vector


@pytest.mark.parametrize("bank", BANKS, ids=[b.name for b in BANKS])
@pytest.mark.parametrize("mode", ["logprob", "generate"])
def test_scripted_content_preference_gives_the_mirror_vector(bank, mode):
    keep = _vector(_content_model(bank, keeps_rules), bank, mode)
    brk = _vector(_content_model(bank, breaks_rules), bank, mode)
    assert np.all(keep[RULE_DIMS] > 0) and np.all(keep[FOUNDATION_DIMS] > 0)
    np.testing.assert_allclose(brk, -keep, rtol=0, atol=1e-12)
    if bank.name == "toy":  # a pure keeper keeps every rule it can (the mixed dilemma halves two dims)
        assert np.all(keep[[0, 1, 2, 3, 4, 6, 7, 9]] > 0.96) and np.all(keep[FOUNDATION_DIMS] > 0.96)


@pytest.mark.parametrize("bank", BANKS, ids=[b.name for b in BANKS])
def test_scripted_worldview_preference_is_measured_by_content(bank):
    for view in WORLDVIEWS:
        vector = _vector(_content_model(bank, prefers_view(view)), bank)
        dim = 15 + WORLDVIEWS.index(view)
        assert vector[dim] > 0.9
        assert all(vector[d] < -0.3 for d in range(15, 19) if d != dim)
        np.testing.assert_array_equal(vector[:15], np.zeros(15))


@pytest.mark.parametrize("bank", BANKS, ids=[b.name for b in BANKS])
@pytest.mark.parametrize(
    "bias",
    [{"position": 0}, {"position": 1}, {"label": "A"}, {"label": "B"}, {"label": "Yes"}, {"label": "No"}],
    ids=lambda b: f"{next(iter(b))}={next(iter(b.values()))}",
)
def test_scripted_position_or_label_bias_gives_zero(bank, bias):
    vector = _vector(ScriptedBackend(**bias, strength=6.0), bank)
    np.testing.assert_allclose(vector, np.zeros(19), rtol=0, atol=1e-9)


@pytest.mark.parametrize("bank", BANKS[:2], ids=[b.name for b in BANKS[:2]])
def test_scripted_first_position_bias_gives_zero_in_generation_mode(bank):
    for position in (0, 1):
        vector = _vector(ScriptedBackend(position=position), bank, mode="generate")
        np.testing.assert_allclose(vector, np.zeros(19), rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- a real tiny model

TRAIN_STEPS, BATCH, LR = 80, 32, 1e-2


def _training_subset(bank: ItemBank) -> ItemBank:
    """A few core scenarios that together measure all 19 dimensions; rule dilemmas are 'pure' (the keeping
    action keeps every rule the two actions differ on), so 'prefer the keeping action' is well defined."""
    chosen: list[Scenario] = []
    covered: set[int] = set()
    for scenario in bank.by_family("rules"):
        signs = {scenario.rule_sign(r) for r in range(10)} - {0}
        rules = {r for r in range(10) if scenario.rule_sign(r)}
        if len(signs) == 1 and rules - covered:
            chosen.append(scenario)
            covered |= rules
    assert covered == set(range(10))
    for theme in sorted({s.theme for s in bank.by_family("foundations")}):
        chosen += [s for s in bank.by_family("foundations") if s.theme == theme][:2]
    chosen += bank.by_family("worldviews")[:2]
    return ItemBank("core-subset", bank.version, tuple(chosen))


def _preferred(scenario: Scenario, direction: str) -> int:
    if scenario.family == "rules":
        keeper = 0 if max(scenario.rule_sign(r) for r in range(10)) > 0 else 1
        return keeper if direction == "keep" else 1 - keeper
    if scenario.family == "foundations":
        assert scenario.honouring is not None
        return scenario.honouring if direction == "keep" else 1 - scenario.honouring
    assert scenario.views is not None
    return scenario.views.index("modern" if direction == "keep" else "traditional")


def _train_tiny(directory: Path, bank: ItemBank, target: str) -> Path:
    """Build a tiny model and fine-tune it (plain torch loop) to answer every prompt of ``bank`` with the
    candidate for the preferred action (``keep``/``break``), or with the first-displayed option (``first``)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from progressgym.backends import _chat
    from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

    prompts = bank_prompts(bank)
    build_tiny_model(
        directory, corpus=[*DEFAULT_TINY_CORPUS, *(p.text for p in prompts)], vocab_size=2048, seed=0
    )
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory)
    scenarios = {s.id: s for s in bank}
    rows = []
    for prompt in prompts:
        answer = (
            prompt.candidates[0]
            if target == "first"
            else prompt.answer_for(_preferred(scenarios[prompt.scenario_id], target))
        )
        context, (ids,) = _chat.encode_candidates(tokenizer, prompt.conversation, [answer])
        rows.append((context, ids))
    width = max(len(c) + len(a) for c, a in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (context, answer) in enumerate(rows):
        n = len(context) + len(answer)
        input_ids[i, :n] = torch.tensor(context + answer)
        labels[i, len(context) : n] = torch.tensor(answer)  # the loss makes the chosen candidate likelier
        mask[i, :n] = 1
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=LR)
    model.train()
    for _ in range(TRAIN_STEPS):
        batch = torch.randperm(len(rows), generator=generator)[:BATCH]
        loss = model(input_ids=input_ids[batch], attention_mask=mask[batch], labels=labels[batch]).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def subset() -> ItemBank:
    return _training_subset(load_bank("core"))


@pytest.fixture(scope="module")
def tiny_vectors(subset, tmp_path_factory) -> dict[str, np.ndarray]:
    import torch

    from progressgym.backends import BackendOptions, make_backend

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small runs fastest on one thread, and the cores are shared
    try:
        out = {}
        for target in ("keep", "break", "first"):
            directory = _train_tiny(tmp_path_factory.mktemp(f"tiny-{target}"), subset, target)
            with make_backend("hf", str(directory), BackendOptions(device="cpu")) as backend:
                out[target] = evaluate_with_backend(backend, subset, progress=False).vector
                if target == "first":
                    labels = evaluate_with_backend(
                        backend, subset, formats=["label", "yesno"], progress=False
                    )
                    out["first-labels"] = labels.vector
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.mark.slow
def test_tiny_model_trained_to_keep_rules_scores_positive(tiny_vectors):
    keep = tiny_vectors["keep"]
    assert np.all(keep[:15] > 0.2), keep.round(3)
    assert keep[MODERN] > 0.2 and all(keep[d] < 0 for d in range(15, 19) if d != MODERN), keep.round(3)


@pytest.mark.slow
def test_tiny_model_trained_the_other_way_scores_negative(tiny_vectors):
    brk = tiny_vectors["break"]
    assert np.all(brk[:15] < -0.2), brk.round(3)
    assert brk[15] > 0.2 and np.all(brk[16:19] < 0), brk.round(3)  # trained towards "traditional"


@pytest.mark.slow
def test_tiny_model_trained_to_pick_the_first_option_scores_near_zero(tiny_vectors):
    # A perfectly position-only model scores exactly 0 (see the scripted tests). After 80 steps the tiny model
    # answers "A"/"Yes" purely by position (those formats alone give |v| < 1e-6), but it copies the first
    # option of the `repeat` format imperfectly, so how likely each copy is still depends a little on the
    # option's text; on a dimension measured by one or two scenarios that leaks up to about 0.17.
    np.testing.assert_allclose(tiny_vectors["first-labels"], np.zeros(19), rtol=0, atol=1e-6)
    first = tiny_vectors["first"]
    assert np.max(np.abs(first)) < 0.25, first.round(3)
    assert np.mean(np.abs(first)) < 0.05, first.round(3)
