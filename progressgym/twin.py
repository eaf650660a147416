"""Structural twins of the HistLlama3 models: tiny random Llama models shaped like them where it matters.

A twin has what makes a HistLlama3 model different from the ``mini`` timeline's models to the code that
loads, prompts, scores and trains it, at a size that builds in seconds on a CPU:

* grouped-query attention (fewer key/value heads than query heads) and rope theta 500,000;
* Llama 3's vocabulary layout: 128,000 ordinary tokens, then 256 special tokens from id 128,000, among them
  ``<|begin_of_text|>`` (bos, added in front of every encoding), ``<|end_of_text|>`` (eos) and
  ``<|eot_id|>`` (128,009, a stop token of generation);
* no chat template and no pad token, so prompts take the timeline's declared format (``alpaca``);
* weights saved in bfloat16, as published.

The ordinary tokens are a byte-level BPE trained on :data:`progressgym.tiny.DEFAULT_TINY_CORPUS`, padded with
never-produced filler entries up to 128,000. Every century model is saved under its HistLlama3 repo name
(``ProgressGym-HistLlama3-8B-C013-instruct-v0.2``) in one folder, which is then a ``--model-dir``::

    python -m progressgym.twin /tmp/twin            # then: --timeline histllama3-8b --model-dir /tmp/twin
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BEGIN_OF_TEXT, END_OF_TEXT, EOT_ID = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"
ORDINARY_TOKENS = 128_000
"""Ordinary (non-special) tokens in Llama 3's vocabulary; the special tokens follow."""
N_SPECIAL = 256
VOCAB_SIZE = ORDINARY_TOKENS + N_SPECIAL
ROPE_THETA = 500_000.0


def llama3_special_tokens() -> list[str]:
    """Llama 3's 256 special tokens in id order (id ``128000 + index``)."""
    named = {
        0: BEGIN_OF_TEXT,
        1: END_OF_TEXT,
        6: "<|start_header_id|>",
        7: "<|end_header_id|>",
        9: EOT_ID,
    }
    tokens, reserved = [], 0
    for index in range(N_SPECIAL):
        if index in named:
            tokens.append(named[index])
        else:
            tokens.append(f"<|reserved_special_token_{reserved}|>")
            reserved += 1
    return tokens


def _tokenizer(max_length: int, corpus: Iterable[str] | None = None, merges: int = 1024) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from progressgym.tiny import DEFAULT_TINY_CORPUS

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=min(merges, ORDINARY_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(DEFAULT_TINY_CORPUS if corpus is None else corpus), trainer=trainer)
    spec = json.loads(bpe.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    # Entries no merge produces: they only give the vocabulary Llama 3's size.
    for index in range(len(vocab), ORDINARY_TOKENS):
        vocab[f"<filler_{index}>"] = index
    spec["added_tokens"] = [
        {
            "id": ORDINARY_TOKENS + i,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, token in enumerate(llama3_special_tokens())
    ]
    full = Tokenizer.from_str(json.dumps(spec))
    full.post_processor = processors.TemplateProcessing(
        single=f"{BEGIN_OF_TEXT} $A",
        pair=f"{BEGIN_OF_TEXT} $A {BEGIN_OF_TEXT} $B",
        special_tokens=[(BEGIN_OF_TEXT, ORDINARY_TOKENS)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=full,
        bos_token=BEGIN_OF_TEXT,
        eos_token=END_OF_TEXT,
        model_max_length=max_length,
        clean_up_tokenization_spaces=True,
    )


def save_twin_tokenizer(
    directory: str | os.PathLike[str], *, corpus: Iterable[str] | None = None, merges: int = 1024
) -> Any:
    """Save (and return) a twin tokenizer: Llama 3's vocabulary layout and special tokens, no chat template.

    Args:
        directory: Where to save it.
        corpus: Texts the BPE is trained on (default: :data:`progressgym.tiny.DEFAULT_TINY_CORPUS`); trained
            on the texts it will encode with many merges, its tokens cover about as many characters as a
            real Llama 3 tokenizer's do.
        merges: Size of the trained vocabulary (before the filler entries).
    """
    tokenizer = _tokenizer(8192, corpus, merges)
    tokenizer.save_pretrained(directory)
    return tokenizer


def build_twin_model(
    directory: str | os.PathLike[str],
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    num_kv_heads: int = 1,
    max_position_embeddings: int = 8192,
) -> Path:
    """Build and save one twin model (see the module docstring).

    Args:
        directory: Where to save it (created if missing).
        seed: Seed of the random weights.
        hidden_size: Model width; ``hidden_size / num_heads`` must be at least 32 (vLLM's smallest head).
        num_layers: Decoder layers.
        num_heads: Query heads.
        num_kv_heads: Key/value heads (fewer than ``num_heads``: grouped-query attention).
        max_position_embeddings: Longest sequence (Llama 3: 8,192).

    Returns:
        The directory.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    if hidden_size % num_heads or hidden_size // num_heads < 32 or num_heads % num_kv_heads:
        raise ValueError(f"bad twin shape: hidden {hidden_size}, heads {num_heads}, kv heads {num_kv_heads}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(max_position_embeddings)
    bos, eos, eot = ORDINARY_TOKENS, ORDINARY_TOKENS + 1, ORDINARY_TOKENS + 9
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=int(3.5 * hidden_size),
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
        rms_norm_eps=1e-5,
        initializer_range=0.2,
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=eos,
        dtype="bfloat16",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.bfloat16)  # type: ignore[arg-type]
    model.generation_config.bos_token_id = bos
    model.generation_config.eos_token_id = [eos, eot]
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return out


def build_histllama3_twin(
    model_dir: str | os.PathLike[str],
    *,
    timeline: str = "histllama3-8b",
    centuries: Sequence[int] | None = None,
    **shape: int,
) -> Path:
    """Build a twin of every century model of a HistLlama3 timeline under its repo name in ``model_dir``.

    Each century's weights are seeded with the century; the tokenizer files are the same for all.

    Args:
        model_dir: The folder to pass as ``--model-dir``.
        timeline: A registered HistLlama3 timeline.
        centuries: The centuries to build (default: all).
        **shape: Passed to :func:`build_twin_model`.

    Returns:
        ``model_dir``.
    """
    from progressgym.timeline import get_timeline

    root = Path(model_dir)
    for member in get_timeline(timeline).members:
        if centuries is None or member.century in centuries:
            build_twin_model(root / member.local_names[0], seed=member.century, **shape)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m progressgym.twin DIR [--timeline NAME]``: build a HistLlama3 twin in ``DIR``."""
    parser = argparse.ArgumentParser(prog="python -m progressgym.twin", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--timeline", default="histllama3-8b")
    args = parser.parse_args(argv)
    print(build_histllama3_twin(args.model_dir, timeline=args.timeline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "BEGIN_OF_TEXT",
    "END_OF_TEXT",
    "EOT_ID",
    "ROPE_THETA",
    "VOCAB_SIZE",
    "build_histllama3_twin",
    "build_twin_model",
    "llama3_special_tokens",
    "save_twin_tokenizer",
]
