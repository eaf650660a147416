"""progressgym's moral evaluation inside other evaluation tools.

* :mod:`progressgym.integrations.lm_eval`: lm-evaluation-harness tasks (``lm_eval --tasks progressgym_values``),
  log-likelihood scoring, the same 19 numbers as ``python -m progressgym.evaluate``;
  ``pip install 'progressgym[lm-eval]'``.
* :mod:`progressgym.integrations.inspect`: an inspect_ai task (generation, parsed with progressgym's parser);
  ``pip install 'progressgym[inspect]'``.

Both read the prompts of :mod:`progressgym.evaluation.banks.export` and score with progressgym's own code
(:mod:`progressgym.integrations.answers`). Importing this package loads neither tool.
"""
