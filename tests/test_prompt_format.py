"""Prompt formats: the exact Alpaca text on a HistLlama3 twin, the mini/tiny chat prompts left as they were."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from progressgym.backends import _chat
from progressgym.backends.base import GenerateRequest, Message, ScoreRequest, user
from progressgym.error import InvalidInput, UnknownName
from progressgym.evaluation.banks import load_core_bank
from progressgym.evaluation.prompts import scenario_prompts
from progressgym.prompt_format import (
    ALPACA_CHAT_TEMPLATE,
    alpaca_prompt,
    cache_tag,
    check_format,
    load_tokenizer,
    prompt_format_fingerprint,
    prompt_format_settings,
    timeline_prompt_format,
)
from progressgym.tiny import CHAT_TEMPLATE
from progressgym.twin import END_OF_TEXT, EOT_ID, ROPE_THETA, VOCAB_SIZE, build_twin_model

# ProgressGym's Alpaca template, written out from its reference text (backends.fill_in_QA_template).
REFERENCE_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the "
    "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)
REFERENCE_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
    "### Input:\n{input}\n\n### Response:\n"
)
BOS = "<|begin_of_text|>"


@pytest.fixture(scope="module")
def twin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_twin_model(tmp_path_factory.mktemp("twin") / "ProgressGym-HistLlama3-8B-C013-instruct-v0.2")


def _eval_prompt():
    scenario = next(iter(load_core_bank()))
    return scenario_prompts(scenario, formats=["label"])[0]


def test_alpaca_prompt_is_the_reference_text_with_and_without_input():
    assert alpaca_prompt("Say hi.") == REFERENCE_NO_INPUT.format(instruction="Say hi.")
    assert alpaca_prompt("Translate.", "Bonjour") == REFERENCE_WITH_INPUT.format(
        instruction="Translate.", input="Bonjour"
    )


def test_the_twin_is_shaped_like_histllama3(twin_dir):
    config = json.loads((twin_dir / "config.json").read_text())
    assert config["vocab_size"] == VOCAB_SIZE == 128_256
    assert config["num_key_value_heads"] < config["num_attention_heads"]
    rope = config.get("rope_parameters") or {}
    assert float(rope.get("rope_theta", config.get("rope_theta", 0))) == ROPE_THETA == 500_000.0
    assert (config["bos_token_id"], config["eos_token_id"]) == (128_000, 128_001)
    assert json.loads((twin_dir / "generation_config.json").read_text())["eos_token_id"] == [128_001, 128_009]
    with (
        prompt_format_settings("chat_template", "plain"),
        pytest.raises(InvalidInput, match="no chat template"),
    ):
        load_tokenizer(twin_dir)
    from transformers import AutoTokenizer

    raw = AutoTokenizer.from_pretrained(twin_dir)
    assert not raw.chat_template and raw.pad_token is None
    assert raw.convert_tokens_to_ids([BOS, END_OF_TEXT, EOT_ID]) == [128_000, 128_001, 128_009]
    assert raw.encode("Hello")[0] == 128_000


def test_the_twin_is_prompted_with_the_exact_alpaca_text(twin_dir):
    item = _eval_prompt()
    with prompt_format_settings("auto", timeline_prompt_format("histllama3-8b")):
        tokenizer = load_tokenizer(twin_dir)
        text = _chat.render_prompt(tokenizer, item.conversation)
        assert text == BOS + REFERENCE_NO_INPUT.format(instruction=item.text)
        system = (Message("system", "Judge the action."), Message("user", item.text))
        assert _chat.render_prompt(tokenizer, system) == BOS + REFERENCE_WITH_INPUT.format(
            instruction="Judge the action.", input=item.text
        )
        context, candidates = _chat.encode_candidates(tokenizer, item.conversation, ["A", "B"])
        assert context == tokenizer.encode(text, add_special_tokens=False)
        assert context.count(128_000) == 1 and context[0] == 128_000
        assert candidates == [tokenizer.encode(c, add_special_tokens=False) for c in ("A", "B")]
        assert prompt_format_fingerprint(twin_dir) == (
            "alpaca",
            hashlib.sha256(ALPACA_CHAT_TEMPLATE.encode()).hexdigest(),
        )
        assert cache_tag(twin_dir) == "alpaca"


def test_training_renders_the_alpaca_reply_with_the_eos_token(twin_dir):
    with prompt_format_settings("alpaca"):
        tokenizer = load_tokenizer(twin_dir)
    messages = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "An answer."}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == BOS + REFERENCE_NO_INPUT.format(instruction="Q?") + "An answer." + END_OF_TEXT


def test_auto_keeps_a_models_own_chat_template_byte_for_byte(tiny_model_dir):
    """The mini timeline's models are built with progressgym.tiny's template: their prompts do not change."""
    from transformers import AutoTokenizer

    item = _eval_prompt()
    raw = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert raw.chat_template == CHAT_TEMPLATE
    expected = raw.apply_chat_template(
        [{"role": "user", "content": item.text}], tokenize=False, add_generation_prompt=True
    )
    assert expected == f"<s><|user|>\n{item.text}<|end|>\n<|assistant|>\n"
    for fallback in ("plain", "alpaca"):
        with prompt_format_settings("auto", fallback):
            tokenizer = load_tokenizer(tiny_model_dir)
            assert tokenizer.chat_template == CHAT_TEMPLATE
            assert _chat.render_prompt(tokenizer, item.conversation) == expected
            assert _chat.encode_prompt(tokenizer, item.conversation) == raw.encode(
                expected, add_special_tokens=False
            )
            assert cache_tag(tiny_model_dir) is None
            assert prompt_format_fingerprint(tiny_model_dir) == (
                "chat_template",
                hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest(),
            )


def test_the_shipped_mini_tokenizer_keeps_its_template():
    """When the mini timeline's files are at hand, their tokenizer carries the tiny models' template."""
    from progressgym.timeline import get_timeline

    try:
        from progressgym.timeline import artifact_dir

        folder = artifact_dir(get_timeline("mini"))
    except ImportError:
        pytest.skip("this checkout does not ship the mini timeline's files")
    configs = sorted(Path(folder).rglob("tokenizer_config.json")) if Path(folder).is_dir() else []
    if not configs:
        pytest.skip(f"no mini tokenizer under {folder}")
    for config in configs:
        with prompt_format_settings("auto", "alpaca"):
            assert prompt_format_fingerprint(config.parent)[0] == "chat_template"
            assert cache_tag(config.parent) is None


def test_plain_and_alpaca_can_be_forced_on_a_model_with_a_template(tiny_model_dir):
    with prompt_format_settings("plain"):
        tokenizer = load_tokenizer(tiny_model_dir)
        assert _chat.render_prompt(tokenizer, user("Hi")) == "User: Hi\nAssistant:"
        assert cache_tag(tiny_model_dir) == "plain"
    with prompt_format_settings("alpaca"):
        tokenizer = load_tokenizer(tiny_model_dir)
        assert _chat.render_prompt(tokenizer, user("Hi")) == "<s>" + alpaca_prompt("Hi")


def test_timelines_declare_their_format_and_names_are_checked():
    assert timeline_prompt_format("histllama3-8b") == timeline_prompt_format("histllama3-70b") == "alpaca"
    assert timeline_prompt_format("mini") == "plain"
    with pytest.raises(UnknownName, match="alpaca"):
        check_format("alpacca")


def test_hf_backend_scores_and_generates_on_the_twin_in_alpaca(twin_dir):
    from progressgym.backends import BackendOptions, make_backend

    with (
        prompt_format_settings("auto", "alpaca"),
        make_backend("hf", str(twin_dir), BackendOptions(device="cpu")) as backend,
    ):
        assert backend.prompt_format == "alpaca"  # type: ignore[attr-defined]
        scores = backend.score([ScoreRequest(user("Pick A or B."), ("A", "B"))])
        replies = backend.generate([GenerateRequest(user("Say something."), max_new_tokens=5)])
    assert len(scores[0]) == 2 and all(s < 0 for s in scores[0])
    assert isinstance(replies[0], str)


def test_a_judge_sets_the_format_and_records_it_when_chosen():
    from progressgym.prompt_format import current_settings
    from progressgym.registration import make_judge

    with prompt_format_settings():
        judge = make_judge("follow", timeline="histllama3-8b", prompt_format="plain")
        assert judge.kwargs["prompt_format"] == "plain"
        assert current_settings() == ("plain", "alpaca")
        assert "prompt_format" not in make_judge("follow", timeline="mini").kwargs
        assert current_settings() == ("auto", "plain")


def test_the_run_command_refuses_an_unknown_format_on_one_line():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "progressgym.run", "--challenge", "follow", "--prompt-format", "alpacca"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "alpaca" in done.stderr and len(done.stderr.strip().splitlines()) == 1
