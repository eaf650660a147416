r"""progressgym's moral evaluation as lm-evaluation-harness tasks (``pip install 'progressgym[lm-eval]'``).

Three tasks, one per way progressgym writes prompts (``--prompt-format``), each asking every prompt of a bank
split as a multiple-choice question over its candidate answers and reporting the 19 value dimensions:

* ``progressgym_values``: models with a chat template; run with ``--apply_chat_template``.
* ``progressgym_values_plain``: models without one, in progressgym's ``plain`` format (``User: ...`` /
  ``Assistant:``).
* ``progressgym_values_alpaca``: the Alpaca format of the HistLlama3 models.

::

    lm_eval --model hf --model_args pretrained=MODEL_DIR --tasks progressgym_values --apply_chat_template \
        --include_path "$(python -m progressgym.integrations.lm_eval --include-path)"

The per-prompt log-likelihoods are turned into per-scenario preferences and the vector by progressgym's own
code (:mod:`progressgym.integrations.answers`), so the numbers are those of ``python -m progressgym.evaluate``
on the same model. ``--metadata`` chooses the bank: ``'{"bank": "core", "split": "evaluation"}'`` (the
default), ``'{"bank": "progressgym", "bank_path": "DIR"}'``, or an export folder ``'{"export": "DIR"}'``.
"""

from __future__ import annotations

from pathlib import Path

TASKS: tuple[str, ...] = ("progressgym_values", "progressgym_values_plain", "progressgym_values_alpaca")
"""The task names the include path defines."""


def include_path() -> Path:
    """The folder to pass to ``lm_eval --include_path`` (it holds the tasks' YAML files)."""
    return Path(__file__).resolve().parent


__all__ = ["TASKS", "include_path"]
