"""progressgym's moral evaluation as lm-evaluation-harness tasks (``pip install 'progressgym[lm-eval]'``).

Three tasks, one per way progressgym writes prompts (``--prompt-format``), each asking every prompt of a bank
split as a multiple-choice question over its candidate answers and reporting the 19 value dimensions:

* ``progressgym_values``: models with a chat template; run with ``--apply_chat_template`` and
  ``add_bos_token=False`` (:data:`CHAT_COMMAND`).
* ``progressgym_values_plain``: models without one, in progressgym's ``plain`` format (``User: ...`` /
  ``Assistant:``).
* ``progressgym_values_alpaca``: the Alpaca format of the HistLlama3 models.

The per-prompt log-likelihoods are turned into per-scenario preferences and the vector by progressgym's own
code (:mod:`progressgym.integrations.answers`), so the numbers are those of ``python -m progressgym.evaluate``
on the same model. ``--metadata`` chooses the bank: ``'{"bank": "core", "split": "evaluation"}'`` (the
default), ``'{"bank": "progressgym", "bank_path": "DIR"}'``, or an export folder ``'{"export": "DIR"}'``.

How lm-eval's tokenisation meets progressgym's:

* lm-eval moves the context's trailing whitespace into the continuation. Chat templates and the Alpaca
  format end the prompt with a newline, so lm-eval scores newline + answer: the same log-probability of the
  newline is added to every candidate of a prompt, and the per-prompt softmax cancels it (byte-level BPE
  tokenisers keep a newline apart from the text after it).
* lm-eval encodes context and answer together and cuts at the context's length; progressgym encodes the
  answer on its own. The tokens agree because no merge crosses the boundary (a special token, a newline, or
  the space before a ``plain`` answer).
* Special tokens: progressgym adds none to a chat template's text (the template writes them); lm-eval adds
  none when the text starts with the bos token, and ``add_bos_token=False`` covers templates that do not
  write one. Without a chat template both use the tokenizer's default (Llama 3's adds its bos token, which the
  Alpaca format needs).
* The answer follows the prompt directly with a chat template and in Alpaca (``target_delimiter: ""``;
  lm-eval sets it so itself with ``--apply_chat_template``) and after a space in ``plain``.
"""

from __future__ import annotations

from pathlib import Path

TASKS: tuple[str, ...] = ("progressgym_values", "progressgym_values_plain", "progressgym_values_alpaca")
"""The task names the include path defines."""

CHAT_COMMAND = (
    "lm_eval --model hf --model_args pretrained=MODEL_DIR,add_bos_token=False --tasks progressgym_values "
    '--apply_chat_template --include_path "$(python -m progressgym.integrations.lm_eval --include-path)"'
)
"""The command that evaluates a chat model as ``python -m progressgym.evaluate --model MODEL_DIR`` does."""


def include_path() -> Path:
    """The folder to pass to ``lm_eval --include_path`` (it holds the tasks' YAML files)."""
    return Path(__file__).resolve().parent


__all__ = ["CHAT_COMMAND", "TASKS", "include_path"]
