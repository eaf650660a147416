import hashlib
import json
from pathlib import Path

import pytest
from jinja2.exceptions import TemplateError
from transformers import AutoTokenizer

from progressgym.tiny import DEFAULT_TINY_CORPUS, SPECIAL_TOKENS, build_tiny_model


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_same_arguments_give_byte_identical_files(tmp_path, tiny_model_dir):
    again = build_tiny_model(tmp_path / "again", corpus=DEFAULT_TINY_CORPUS, seed=0)
    assert _digests(again) == _digests(tiny_model_dir)
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= set(
        _digests(again)
    )


def test_seed_changes_the_weights_only(tmp_path, tiny_model_dir):
    other = _digests(build_tiny_model(tmp_path / "other", corpus=DEFAULT_TINY_CORPUS, seed=1))
    base = _digests(tiny_model_dir)
    assert other["model.safetensors"] != base["model.safetensors"]
    assert other["tokenizer.json"] == base["tokenizer.json"]


def test_corpus_is_a_few_hundred_distinct_sentences():
    assert 200 <= len(DEFAULT_TINY_CORPUS) <= 1000
    assert len(set(DEFAULT_TINY_CORPUS)) == len(DEFAULT_TINY_CORPUS)


def test_config_has_vllm_compatible_heads(tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["hidden_size"] // config["num_attention_heads"] >= 32
    assert config["architectures"] == ["LlamaForCausalLM"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert config["vocab_size"] == len(tokenizer) <= 512
    assert config["eos_token_id"] == tokenizer.eos_token_id


@pytest.mark.parametrize(("hidden", "heads"), [(64, 4), (96, 4), (100, 3)])
def test_small_or_uneven_heads_are_refused(tmp_path, hidden, heads):
    with pytest.raises(ValueError, match="head_dim >= 32"):
        build_tiny_model(tmp_path, corpus=["hello"], hidden_size=hidden, num_heads=heads)


def test_chat_template_renders_turns_and_generation_prompt(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Is honesty good?"},
        {"role": "assistant", "content": "Yes."},
        {"role": "user", "content": "Why?"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<s><|system|>\nBe brief.<|end|>\n<|user|>\nIs honesty good?<|end|>\n"
        "<|assistant|>\nYes.<|end|>\n<|user|>\nWhy?<|end|>\n<|assistant|>\n"
    )
    without = tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=False)
    assert without.endswith("Is honesty good?<|end|>\n")
    with pytest.raises(TemplateError, match="unsupported chat role"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_special_tokens_are_single_tokens(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tokenizer.encode("".join(SPECIAL_TOKENS), add_special_tokens=False)
    assert ids == list(range(len(SPECIAL_TOKENS)))
    assert (
        tokenizer.decode(tokenizer.encode("Ünïcode — any text ✓", add_special_tokens=False))
        == "Ünïcode — any text ✓"
    )
