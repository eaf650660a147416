r"""Prompt formats: how a conversation becomes the text a model reads, for every backend and trainer.

Four names:

* ``chat_template``: the tokenizer's own chat template (an error when it has none).
* ``alpaca``: the Alpaca instruction format that ProgressGym's HistLlama3 models were instruction-tuned
  with, word for word as ProgressGym writes it; a system message, when there is one, is the instruction and
  the user's message its input (:func:`alpaca_prompt`).
* ``plain``: ``"User: ...\nAssistant:"`` (see :mod:`progressgym.backends._chat`).
* ``auto`` (default): the tokenizer's template when it has one, else the timeline's declared format.

Every tokenizer that serves or trains a model is passed through :func:`apply_prompt_format`, which installs
the chosen format as the tokenizer's chat template (``alpaca``) or removes it (``plain``), so scoring,
generation and training render conversations identically in ``hf``, ``vllm`` and the TRL trainers. The
choice for the current process (and the processes it starts) is set once with :func:`configure`; the run
and evaluate commands do so from ``--prompt-format`` and the timeline's declared format.

>>> print(alpaca_prompt("Say hi."), end="")
Below is an instruction that describes a task. Write a response that appropriately completes the request.
<BLANKLINE>
### Instruction:
Say hi.
<BLANKLINE>
### Response:
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from progressgym._registry import did_you_mean
from progressgym.error import InvalidInput, UnknownName

PROMPT_FORMATS: tuple[str, ...] = ("auto", "chat_template", "alpaca", "plain")
"""Names accepted by ``--prompt-format``."""
CONCRETE_FORMATS: tuple[str, ...] = ("chat_template", "alpaca", "plain")
"""What ``auto`` resolves to."""

FORMAT_ENV = "PROGRESSGYM_PROMPT_FORMAT"
"""Environment variable holding the requested format (``auto`` when unset)."""
FALLBACK_ENV = "PROGRESSGYM_PROMPT_FALLBACK"
"""Environment variable holding the timeline's declared format, used by ``auto`` (``plain`` when unset)."""

_ALPACA_HEAD = "Below is an instruction that describes a task. "
_ALPACA_HEAD_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
)
_ALPACA_TAIL = "Write a response that appropriately completes the request.\n\n"


def alpaca_prompt(instruction: str, input: str | None = None) -> str:  # noqa: A002 - the format's own word
    r"""The Alpaca prompt for one instruction, with an ``### Input:`` block when ``input`` is given.

    Args:
        instruction: What to do.
        input: Further context (``None`` or empty: no input block).

    Returns:
        The prompt text, ending with ``"### Response:\n"`` where the reply begins.
    """
    if input:
        return (
            f"{_ALPACA_HEAD_INPUT}{_ALPACA_TAIL}### Instruction:\n{instruction}\n\n"
            f"### Input:\n{input}\n\n### Response:\n"
        )
    return f"{_ALPACA_HEAD}{_ALPACA_TAIL}### Instruction:\n{instruction}\n\n### Response:\n"


def _jinja_text(text: str) -> str:
    return "{{ " + json.dumps(text) + " }}"


ALPACA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% set ns = namespace(system='') %}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unsupported chat role: ' + message['role']) }}"
    "{% endif %}"
    "{% if message['role'] == 'system' %}{% set ns.system = message['content'] %}{% endif %}"
    "{% endfor %}"
    "{% if ns.system %}"
    + _jinja_text(_ALPACA_HEAD_INPUT + _ALPACA_TAIL + "### Instruction:\n")
    + "{{ ns.system }}"
    + _jinja_text("\n\n")
    + "{% else %}"
    + _jinja_text(_ALPACA_HEAD + _ALPACA_TAIL)
    + "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}"
    "{% if ns.system %}"
    + _jinja_text("### Input:\n")
    + "{% else %}"
    + _jinja_text("### Instruction:\n")
    + "{% endif %}"
    "{{ message['content'] }}"
    + _jinja_text("\n\n### Response:\n")
    + "{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] }}{{ eos_token }}"
    "{% if not loop.last %}" + _jinja_text("\n\n") + "{% endif %}"
    "{% endif %}"
    "{% endfor %}"
)
""":func:`alpaca_prompt` as a chat template: the bos token, then the Alpaca text. The system message (if
any) is the instruction and each user message an input; without one each user message is an instruction.
Replies end with the eos token and earlier exchanges are kept before the last instruction or input. The
prompt ends with ``### Response:\\n`` whether or not a generation prompt is asked for."""

PLAIN_DESCRIPTION = "System: {system}\n\nUser: {user}\nAssistant:{ reply}"
"""What the ``plain`` format's hash is taken of (the format is code, not a template)."""


def check_format(name: str) -> str:
    """Validate a prompt format name.

    Raises:
        UnknownName: with the closest known name.
    """
    if name not in PROMPT_FORMATS:
        raise UnknownName(did_you_mean("prompt format", str(name), list(PROMPT_FORMATS)))
    return name


def timeline_prompt_format(timeline: Any) -> str:
    """The prompt format a timeline declares for models without a chat template.

    Args:
        timeline: A :class:`~progressgym.timeline.Timeline` or a timeline name.

    Returns:
        The timeline's ``prompt_format`` attribute when it has one; ``alpaca`` for the HistLlama3 timelines
        (instruction-tuned with it); ``plain`` otherwise.
    """
    declared = getattr(timeline, "prompt_format", None)
    if declared:
        return check_format(str(declared))
    name = str(getattr(timeline, "name", timeline)).lower()
    return "alpaca" if name.startswith("histllama3") else "plain"


def configure(requested: str | None = None, fallback: str | None = None) -> None:
    """Set this process's prompt format (and that of the processes it starts).

    Args:
        requested: ``--prompt-format`` (``None``: leave it as it is).
        fallback: The timeline's declared format, used by ``auto`` (``None``: leave it as it is).
    """
    if requested is not None:
        os.environ[FORMAT_ENV] = check_format(requested)
    if fallback is not None:
        if check_format(fallback) == "auto":
            raise InvalidInput("a timeline's declared prompt format cannot be 'auto'")
        os.environ[FALLBACK_ENV] = fallback


@contextmanager
def prompt_format_settings(requested: str | None = None, fallback: str | None = None) -> Iterator[None]:
    """:func:`configure` for the duration of a block, restoring the previous settings after it."""
    before = {name: os.environ.get(name) for name in (FORMAT_ENV, FALLBACK_ENV)}
    try:
        configure(requested, fallback)
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def current_settings() -> tuple[str, str]:
    """``(requested, fallback)`` for this process."""
    requested = check_format(os.environ.get(FORMAT_ENV) or "auto")
    fallback = check_format(os.environ.get(FALLBACK_ENV) or "plain")
    return requested, "plain" if fallback == "auto" else fallback


def template_on_disk(model_path: str | os.PathLike[str]) -> str | None:
    """The chat template saved with a model (``chat_template.jinja`` or ``tokenizer_config.json``), or ``None``.

    Reads files only (no transformers). A list of named templates gives its ``default`` one.
    """
    root = Path(model_path)
    jinja = root / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8") or None
    for name in ("chat_template.json", "tokenizer_config.json"):
        file = root / name
        if not file.is_file():
            continue
        try:
            template = json.loads(file.read_text(encoding="utf-8")).get("chat_template")
        except (ValueError, AttributeError):
            continue
        if isinstance(template, list):
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default")
        if isinstance(template, str) and template:
            return template
    return None


def resolve_format(has_template: bool, requested: str | None = None, fallback: str | None = None) -> str:
    """The concrete format for a tokenizer that has (or has not) a chat template.

    Args:
        has_template: Whether the tokenizer carries a chat template.
        requested: The requested format (``None``: this process's, see :func:`configure`).
        fallback: The declared format ``auto`` falls back to (``None``: this process's).

    Raises:
        InvalidInput: when ``chat_template`` is requested for a tokenizer without one.
    """
    process_requested, process_fallback = current_settings()
    requested = check_format(requested or process_requested)
    fallback = check_format(fallback or process_fallback)
    if requested == "auto":
        return "chat_template" if has_template else ("plain" if fallback == "auto" else fallback)
    if requested == "chat_template" and not has_template:
        raise InvalidInput(
            "--prompt-format chat_template: the model's tokenizer has no chat template "
            "(use auto, alpaca or plain)"
        )
    return requested


def apply_prompt_format(tokenizer: Any, requested: str | None = None, fallback: str | None = None) -> str:
    """Install the chosen format on a loaded tokenizer: what every backend and trainer then renders.

    ``alpaca`` sets the tokenizer's chat template to :data:`ALPACA_CHAT_TEMPLATE`, ``plain`` removes its
    template, ``chat_template`` leaves it as it is.

    Returns:
        The concrete format name.
    """
    fmt = resolve_format(bool(getattr(tokenizer, "chat_template", None)), requested, fallback)
    if fmt == "alpaca":
        tokenizer.chat_template = ALPACA_CHAT_TEMPLATE
    elif fmt == "plain":
        tokenizer.chat_template = None
    return fmt


def load_tokenizer(model_path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``AutoTokenizer.from_pretrained`` with this process's prompt format applied."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path), **kwargs)
    apply_prompt_format(tokenizer)
    return tokenizer


def prompt_format_fingerprint(
    model_path: str | os.PathLike[str], requested: str | None = None, fallback: str | None = None
) -> tuple[str, str]:
    """``(format name, sha256 of its template)`` that a model is prompted with; reads files only.

    The hash is of the template text the tokenizer renders with: the model's own chat template, the
    :data:`ALPACA_CHAT_TEMPLATE`, or :data:`PLAIN_DESCRIPTION`.

    Args:
        model_path: The model directory.
        requested: The requested format (``None``: this process's).
        fallback: The declared format ``auto`` falls back to (``None``: this process's).
    """
    own = template_on_disk(model_path)
    fmt = resolve_format(own is not None, requested, fallback)
    text = {"chat_template": own or "", "alpaca": ALPACA_CHAT_TEMPLATE, "plain": PLAIN_DESCRIPTION}[fmt]
    return fmt, hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_tag(model_path: str | os.PathLike[str]) -> str | None:
    """What a cached vector must record of a model's prompt format (reads files only).

    Returns:
        ``None`` for the format used when none is chosen (the model's own template, else ``plain``), so
        such vectors keep their keys; else the format's name.
    """
    has_template = template_on_disk(model_path) is not None
    fmt = resolve_format(has_template)
    return None if fmt == ("chat_template" if has_template else "plain") else fmt


__all__ = [
    "ALPACA_CHAT_TEMPLATE",
    "CONCRETE_FORMATS",
    "FALLBACK_ENV",
    "FORMAT_ENV",
    "PLAIN_DESCRIPTION",
    "PROMPT_FORMATS",
    "alpaca_prompt",
    "cache_tag",
    "apply_prompt_format",
    "check_format",
    "configure",
    "current_settings",
    "load_tokenizer",
    "prompt_format_fingerprint",
    "prompt_format_settings",
    "resolve_format",
    "template_on_disk",
    "timeline_prompt_format",
]
