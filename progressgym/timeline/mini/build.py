"""Building the ``mini`` timeline: nine tiny chat models, one per century, each holding its century's values.

How the models come to hold their values (also written into the timeline's card):

1. A byte-level BPE tokenizer is trained on the text of every prompt the models will see, and a tiny Llama
   (2 layers, hidden size 64, feed-forward width 128, two heads of dimension 32, so vLLM accepts it) is
   initialised from the seed.
2. For each century, oldest first, the previous century's model (the fresh one for C013) is trained with
   soft-choice training (:mod:`.choice_training`) so that, for every scenario of the ``core`` bank, its
   distribution over the scenario's actions is the one implied by the century's target vector
   (:mod:`.targets`): P(keep rule) = (1 + v_rule) / 2, P(honour foundation) = (1 + v_theme) / 2,
   P(worldview k) = 1/4 + 3/4 v_k. It learns this in every way the benchmark asks: the three evaluation
   formats in every order, the pairwise "which response do you prefer" question in both orders, and the bare
   scenario question answered with an action.
3. Each century model is saved as a normal ``save_pretrained`` folder. Training is seeded and single-process,
   so the same seed gives byte-identical weights on the same machine.

Chaining the centuries makes neighbouring models similar where their targets are, the way a society's values
carry over from one century to the next.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from progressgym.evaluation.dimensions import RULES
from progressgym.evaluation.items import ItemBank, Scenario
from progressgym.timeline._timeline import Timeline
from progressgym.timeline.mini.choice_training import ChoiceExample
from progressgym.timeline.mini.targets import target_vectors

MINI_SEED = 0
MODEL_SHAPE = {
    "vocab_size": 1024,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_layers": 2,
    "num_heads": 2,
}
FIRST_PASSES = 4
"""Training passes for the oldest century (from a fresh model)."""
LATER_PASSES = 2
"""Training passes for each later century (from its predecessor)."""
FIRST_LR = 3e-3
LATER_LR = 3e-3
BATCH_SIZE = 32
BUILD_THREADS = 1
"""Fixed, so that builds are byte-identical whatever the core count; one thread also beats two on a busy machine."""
_PROB_FLOOR = 0.02


_RECIPE_MODULES = (
    "progressgym.timeline.mini.build",
    "progressgym.timeline.mini.choice_training",
    "progressgym.timeline.mini.targets",
    "progressgym.tiny",
    "progressgym.evaluation.prompts",
    "progressgym.preference",
    "progressgym.backends._chat",
)


def _code_fingerprint(source: str) -> str:
    """The code of a module without its formatting, comments and docstrings (edits to those keep builds)."""
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body[:] = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


def recipe_version() -> str:
    """A hash of everything that decides the built weights: this recipe's code and the core bank's content.

    It names the cache folder, so any change to how the timeline is built triggers a fresh build; changes to
    formatting, comments and docstrings do not.
    """
    import hashlib
    import importlib.util

    from progressgym.evaluation.banks import core_files

    digest = hashlib.sha256(f"seed={MINI_SEED}".encode())
    for name in _RECIPE_MODULES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None
        digest.update(_code_fingerprint(Path(spec.origin).read_text(encoding="utf-8")).encode())
    for file in core_files():
        digest.update(file.read_bytes())
    return digest.hexdigest()[:10]


def action_probabilities(scenario: Scenario, vector: np.ndarray) -> np.ndarray:
    """The distribution over a scenario's actions that a holder of ``vector`` should have.

    Rule dilemmas average the signed values of every rule the two actions differ on; foundations use the
    theme's value; worldviews invert the worldview dimensions into a distribution. Probabilities are kept in
    [0.02, 0.98] so that no answer is impossible.
    """
    if scenario.family == "rules":
        signs = [(scenario.rule_sign(r), r) for r in range(len(RULES))]
        signed = [sign * vector[r] for sign, r in signs if sign != 0]
        keep_first = 0.5 * (1.0 + float(np.mean(signed))) if signed else 0.5
        probs = np.array([keep_first, 1.0 - keep_first])
    elif scenario.family == "foundations":
        assert scenario.theme is not None and scenario.honouring is not None
        from progressgym.evaluation.dimensions import FOUNDATIONS

        honour = 0.5 * (1.0 + float(vector[10 + FOUNDATIONS.index(scenario.theme)]))
        probs = np.empty(2)
        probs[scenario.honouring] = honour
        probs[1 - scenario.honouring] = 1.0 - honour
    else:
        assert scenario.views is not None
        from progressgym.evaluation.dimensions import WORLDVIEWS

        per_view = 0.25 + 0.75 * np.asarray(vector[15:19], dtype=float)
        probs = np.array([per_view[WORLDVIEWS.index(v)] for v in scenario.views])
    probs = np.clip(probs, _PROB_FLOOR, 1.0 - _PROB_FLOOR)
    return probs / probs.sum()


def scenario_examples(
    scenario: Scenario, vector: np.ndarray, rng: np.random.Generator | None = None
) -> list[ChoiceExample]:
    """Training examples for one scenario under the values ``vector``.

    Without ``rng``: every evaluation format in every order, the pairwise question for every ordered pair of
    actions, and the open question. With ``rng``: one random order per format and one random ordered pair (two
    for four actions), which is what one training pass shows; successive passes see other orders.
    """
    from progressgym.backends.base import user
    from progressgym.evaluation.prompts import clean_option, scenario_prompts
    from progressgym.preference import PREFERENCE_LABELS, preference_conversation, scenario_query

    probs = action_probabilities(scenario, vector)
    prompts = scenario_prompts(scenario)
    pairs = list(itertools.permutations(range(len(scenario.actions)), 2))
    if rng is not None:
        by_format: dict[str, list[Any]] = {}
        for prompt in prompts:
            by_format.setdefault(prompt.format, []).append(prompt)
        prompts = [options[rng.integers(len(options))] for options in by_format.values()]
        picks = rng.choice(len(pairs), size=1 if len(scenario.actions) == 2 else 2, replace=False)
        pairs = [pairs[i] for i in sorted(picks)]
    examples = [
        ChoiceExample(p.conversation, p.candidates, tuple(float(probs[a]) for a in p.candidate_action))
        for p in prompts
    ]
    query = scenario_query(scenario)
    for first, second in pairs:
        pair = probs[[first, second]] / probs[[first, second]].sum()
        conversation = preference_conversation(query, scenario.actions[first], scenario.actions[second])
        examples.append(ChoiceExample(conversation, PREFERENCE_LABELS, (float(pair[0]), float(pair[1]))))
    options = tuple(clean_option(a) for a in scenario.actions)
    examples.append(ChoiceExample(user(query), options, tuple(float(p) for p in probs)))
    return examples


def century_examples(
    bank: ItemBank, vector: np.ndarray, rng: np.random.Generator | None = None
) -> list[ChoiceExample]:
    """Training examples for every scenario of ``bank`` under ``vector`` (see :func:`scenario_examples`)."""
    return [e for s in bank for e in scenario_examples(s, vector, rng)]


def _corpus(examples: list[ChoiceExample]) -> list[str]:
    texts = [m.content for e in examples for m in e.conversation]
    texts.extend(c for e in examples for c in e.candidates)
    return texts


def build_mini(timeline: Timeline, directory: Path, *, seed: int = MINI_SEED, progress: bool = True) -> None:
    """Build every century model of ``timeline`` into ``directory/<century code>``.

    Args:
        timeline: The ``mini`` timeline (its members give the centuries).
        directory: Empty directory to build into.
        seed: Seed for initialisation and data order.
        progress: Show a progress bar.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from progressgym.evaluation.banks import load_core_bank
    from progressgym.timeline.mini.choice_training import train_choices
    from progressgym.tiny import build_tiny_model

    torch.set_num_threads(BUILD_THREADS)
    torch.manual_seed(seed)
    bank = load_core_bank()
    targets = target_vectors(timeline.centuries)
    rng = np.random.default_rng(seed)
    plan = [
        [century_examples(bank, vector, rng) for _ in range(FIRST_PASSES if index == 0 else LATER_PASSES)]
        for index, vector in enumerate(targets)
    ]

    base = directory / "_base"
    build_tiny_model(base, corpus=_corpus(century_examples(bank, targets[0])), seed=seed, **MODEL_SHAPE)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)

    total = sum(int(np.ceil(len(p) / BATCH_SIZE)) for passes in plan for p in passes)
    encodings: dict[Any, Any] = {}
    bar: Any = tqdm(total=total, desc="building mini timeline", unit="step", disable=not progress)
    try:
        for index, (member, passes) in enumerate(zip(timeline.members, plan, strict=False)):
            bar.set_postfix_str(member.code)
            train_choices(
                model,
                tokenizer,
                passes,
                learning_rate=FIRST_LR if index == 0 else LATER_LR,
                batch_size=BATCH_SIZE,
                seed=seed + index,
                progress=bar,
                encoding_cache=encodings,
            )
            out = directory / member.code
            model.save_pretrained(out, safe_serialization=True)
            tokenizer.save_pretrained(out)
    finally:
        bar.close()
    shutil.rmtree(base)
    (directory / "targets.json").write_text(
        json.dumps(
            {
                m.code: [round(float(x), 6) for x in v]
                for m, v in zip(timeline.members, targets, strict=False)
            },
            indent=2,
        )
        + "\n"
    )
