r"""The one place where conversations become text and token ids, shared by every real backend.

``hf`` and ``vllm`` both call these functions and hand token ids (never text) to their engines, so they see
exactly the same tokens for the same request.

Prompt format:
    With a chat template, the tokenizer's template is applied with ``add_generation_prompt=True`` and the
    result is encoded without adding special tokens (the template writes them itself, e.g. the bos token).
    Without one (a base model), a plain fallback is used: ``"System: ...\n\nUser: ...\nAssistant:"``, one
    ``Role: content`` line per turn, encoded with the tokenizer's usual special tokens. The reply then
    starts after a single space, which belongs to the reply: it is prepended to scored candidates and
    removed from generated text.

Scoring:
    A candidate is tokenised on its own (no special tokens) and appended to the context's ids, as
    lm-evaluation-harness appends its continuation. Encoding the candidate apart from the context keeps its
    tokens independent of the prompt, which lets a backend run the context once for all its candidates; the
    joint encoding would differ only if a BPE merge crossed the boundary, and chat templates end the prompt
    with a special token or a newline, across which byte-level BPE does not merge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from progressgym.backends.base import Conversation

FALLBACK_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}
"""Role labels of the plain fallback format."""

_FALLBACK_REPLY_PREFIX = " "


class ScoringIds(NamedTuple):
    """Token ids of one scored candidate: the context and the candidate that follows it."""

    context: list[int]
    candidate: list[int]


def has_chat_template(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` carries a chat template (otherwise the plain fallback format is used)."""
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer: Any, conversation: Conversation) -> str:
    r"""The prompt text for ``conversation``, ending where the assistant's reply begins.

    Args:
        tokenizer: A transformers tokenizer.
        conversation: The turns so far.

    Returns:
        The chat template applied with ``add_generation_prompt=True``, or the plain fallback
        ``"User: ...\nAssistant:"`` when the tokenizer has no template.
    """
    if has_chat_template(tokenizer):
        messages = [{"role": m.role, "content": m.content} for m in conversation]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text)
    lines = []
    for message in conversation:
        lines.append(f"{FALLBACK_ROLES[message.role]}: {message.content}")
        if message.role == "system":
            lines.append("")
    return "\n".join([*lines, f"{FALLBACK_ROLES['assistant']}:"])


def encode_prompt(tokenizer: Any, conversation: Conversation) -> list[int]:
    """The token ids of :func:`render_prompt`'s text (special tokens as described in the module docstring)."""
    text = render_prompt(tokenizer, conversation)
    ids: list[int] = tokenizer.encode(text, add_special_tokens=not has_chat_template(tokenizer))
    return ids


def encode_candidates(
    tokenizer: Any, conversation: Conversation, candidates: Sequence[str]
) -> tuple[list[int], list[list[int]]]:
    """Context ids of ``conversation`` and the ids of each candidate reply, encoded on its own.

    Returns:
        ``(context_ids, [candidate_ids, ...])``; a candidate's ids follow the context directly.
    """
    context = encode_prompt(tokenizer, conversation)
    prefix = "" if has_chat_template(tokenizer) else _FALLBACK_REPLY_PREFIX
    encoded = [
        list(tokenizer.encode(prefix + candidate, add_special_tokens=False)) for candidate in candidates
    ]
    return context, encoded


def encode_for_scoring(tokenizer: Any, conversation: Conversation, candidate: str) -> ScoringIds:
    """The ids to score one candidate reply: ``(context_ids, candidate_ids)``.

    The candidate is tokenised on its own, without special tokens, and is meant to be appended to the
    context (see the module docstring for why).
    """
    context, (ids,) = encode_candidates(tokenizer, conversation, [candidate])
    return ScoringIds(context, ids)


def stop_token_ids(tokenizer: Any, generation_eos: int | Iterable[int] | None = None) -> list[int]:
    """Token ids that end a generated reply: the tokenizer's eos plus the generation config's eos ids.

    Args:
        tokenizer: A transformers tokenizer.
        generation_eos: ``eos_token_id`` of the model's generation config (an id, a list, or ``None``).
    """
    ids: list[int] = []
    candidates: list[int | None] = [tokenizer.eos_token_id]
    if isinstance(generation_eos, int):
        candidates.append(generation_eos)
    elif generation_eos is not None:
        candidates.extend(generation_eos)
    for token in candidates:
        if token is not None and token not in ids:
            ids.append(int(token))
    return ids


def decode_reply(tokenizer: Any, token_ids: Sequence[int], stop_ids: Iterable[int] = ()) -> str:
    """The text of a generated reply: stop tokens and other special tokens dropped.

    Generation ends at the first stop token; anything from it on is left out. With the fallback format
    the reply's leading space is removed.
    """
    stops = set(stop_ids)
    ids = list(token_ids)
    for index, token in enumerate(ids):
        if token in stops:
            ids = ids[:index]
            break
    text = str(tokenizer.decode(ids, skip_special_tokens=True))
    if not has_chat_template(tokenizer) and text.startswith(_FALLBACK_REPLY_PREFIX):
        text = text[len(_FALLBACK_REPLY_PREFIX) :]
    return text
