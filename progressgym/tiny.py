"""Tiny, deterministic chat models built from scratch, for tests and the miniature timeline.

Nothing is downloaded: :func:`build_tiny_model` trains a byte-level BPE tokenizer on a small corpus in-process,
gives it chat markers and a chat template, and saves it beside a randomly initialised ``LlamaForCausalLM``.
The same arguments always give byte-identical files, so a built model can serve as a cache key.

>>> from progressgym.tiny import DEFAULT_TINY_CORPUS
>>> len(DEFAULT_TINY_CORPUS) >= 200
True
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from pathlib import Path

BOS, EOS, PAD, UNK = "<s>", "<|end|>", "<pad>", "<unk>"
SYSTEM, USER, ASSISTANT = "<|system|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, SYSTEM, USER, ASSISTANT)
"""Special tokens, in id order (``<pad>`` is id 0). ``<|end|>`` closes every turn and is also the eos token."""

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unsupported chat role: ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
"""The tiny models' chat format: ``<s><|user|>\\nHi<|end|>\\n<|assistant|>\\n``.

Every turn ends with ``<|end|>``, the eos token, so a generated reply stops where a trained turn would end.
"""

_SUBJECTS = (
    "The farmer",
    "A young scholar",
    "The old queen",
    "My neighbour",
    "The merchant",
    "A travelling monk",
    "The village council",
    "Her grandmother",
    "The blacksmith",
    "A curious child",
    "The city guard",
    "Our teacher",
)
_VERBS = (
    "believes that",
    "says that",
    "wonders whether",
    "argues that",
    "doubts that",
    "hopes that",
)
_CLAUSES = (
    "honesty is the first duty of a good person",
    "the harvest will be late this year",
    "every stranger deserves a fair hearing",
    "the river floods after the spring rains",
    "wealth should be shared with the poor",
    "children ought to obey their parents",
    "the king rules by the will of heaven",
    "women and men should have equal rights",
    "a promise must be kept even when it hurts",
    "science will explain the stars",
    "the market is busiest on Sunday morning",
    "animals can feel pain as we do",
    "kindness matters more than wealth",
    "the law should protect the weak",
    "travel teaches more than books",
)
_QUESTIONS = (
    "Is it right to lie to protect a friend?",
    "Should a ruler listen to the people?",
    "What makes a life worth living?",
    "Can a machine be wise?",
    "Why do seasons change?",
    "How should we treat our enemies?",
    "What is owed to future generations?",
    "Is it fair to punish the hungry thief?",
)
_ANSWERS = (
    "Yes, because trust is the ground of every friendship.",
    "No, for justice must be the same for all.",
    "It depends on the harm that would follow.",
    "Many thinkers have disagreed about this for centuries.",
    "I think we should be patient and kind.",
    "The answer changes as times change.",
)


def _default_corpus() -> tuple[str, ...]:
    # Every fourth subject-verb-clause combination: 270 statements, each subject and clause in many of them.
    combos = itertools.product(_SUBJECTS, _VERBS, _CLAUSES)
    statements = [f"{s} {v} {c}." for i, (s, v, c) in enumerate(combos) if i % 4 == 0]
    numbered = [f"In the year {1200 + 37 * i}, {clause}." for i, clause in enumerate(_CLAUSES)]
    dialogues = [f"Q: {q} A: {a}" for q, a in itertools.product(_QUESTIONS, _ANSWERS)]
    return (*statements, *numbered, *dialogues, *(q for q in _QUESTIONS), *(a for a in _ANSWERS))


DEFAULT_TINY_CORPUS: tuple[str, ...] = _default_corpus()
"""A few hundred short, varied English sentences (statements, dates, questions and answers), made in code."""


def build_tiny_model(
    directory: str | os.PathLike[str],
    *,
    corpus: Iterable[str],
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
    max_position_embeddings: int = 1024,
    intermediate_size: int | None = None,
) -> Path:
    """Build and save a tiny Llama chat model with its own tokenizer.

    The tokenizer is a byte-level BPE trained on ``corpus`` (so any text encodes, without unknown tokens)
    with the :data:`SPECIAL_TOKENS` and :data:`CHAT_TEMPLATE`. The model is a ``LlamaForCausalLM`` with
    random weights drawn from ``seed``. Its initialiser range is wider than Llama's usual 0.02 so that the
    next-token logits are spread out: greedy decoding then has clear winners, and backends that differ by
    float rounding still pick the same tokens.

    Args:
        directory: Where to save (created if missing; existing files of the same names are overwritten).
        corpus: Texts to train the tokenizer on.
        vocab_size: Target vocabulary size (byte alphabet and special tokens included); the trained
            vocabulary can be smaller when the corpus runs out of merges.
        hidden_size: Model width.
        num_layers: Decoder layers.
        num_heads: Attention heads; ``hidden_size / num_heads`` must be at least 32 (vLLM refuses smaller heads).
        seed: Seed of the weight initialisation.
        max_position_embeddings: Longest sequence the model accepts.
        intermediate_size: Width of the feed-forward layers (default ``4 * hidden_size``).

    Returns:
        The directory, holding ``config.json``, ``generation_config.json``, ``model.safetensors`` and the
        tokenizer files.

    Raises:
        ValueError: If the head size is below 32 or does not divide ``hidden_size``.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    if hidden_size % num_heads or hidden_size // num_heads < 32:
        raise ValueError(
            f"hidden_size / num_heads must be a whole number >= 32 (vLLM needs head_dim >= 32), "
            f"got {hidden_size} / {num_heads}"
        )
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    bpe = Tokenizer(models.BPE(unk_token=UNK))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(corpus), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        extra_special_tokens=[SYSTEM, USER, ASSISTANT],
        model_max_length=max_position_embeddings,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    ids = {token: int(tokenizer.convert_tokens_to_ids(token)) for token in (BOS, EOS, PAD)}  # type: ignore[arg-type]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        initializer_range=0.2,
        tie_word_embeddings=False,
        bos_token_id=ids[BOS],
        eos_token_id=ids[EOS],
        pad_token_id=ids[PAD],
        dtype="float32",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.bos_token_id = ids[BOS]
    model.generation_config.eos_token_id = ids[EOS]
    model.generation_config.pad_token_id = ids[PAD]
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return out
