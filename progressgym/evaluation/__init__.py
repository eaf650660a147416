"""Moral evaluation: from a model's answers to moral scenarios to its 19-dimension value vector.

>>> from progressgym.evaluation import evaluate                       # doctest: +SKIP
>>> result = evaluate("mini:13")                                      # doctest: +SKIP
>>> result.as_mapping()["Do not kill"]                                # doctest: +SKIP

The pieces, in the order they run: :mod:`~progressgym.evaluation.banks` (scenarios),
:mod:`~progressgym.evaluation.prompts` (question formats and option orders),
:mod:`~progressgym.evaluation.scoring` (answers -> per-scenario preferences),
:mod:`~progressgym.evaluation.vector` (preferences -> vector), :mod:`~progressgym.evaluation.cache`.
Importing this package loads neither torch nor transformers.
"""

from progressgym.evaluation.dimensions import DIMENSIONS, N_DIMS, VECTOR_VERSION
from progressgym.evaluation.evaluator import (
    Evaluation,
    evaluate,
    evaluate_timeline,
    evaluate_with_backend,
    resolve_model,
)
from progressgym.evaluation.items import ItemBank, Scenario
from progressgym.evaluation.prompts import PromptItem, bank_prompts, scenario_prompts
from progressgym.evaluation.scoring import Preferences, measure_preferences, parse_answer
from progressgym.evaluation.vector import ValueVector, value_vector

__all__ = [
    "DIMENSIONS",
    "N_DIMS",
    "VECTOR_VERSION",
    "Evaluation",
    "ItemBank",
    "Preferences",
    "PromptItem",
    "Scenario",
    "ValueVector",
    "bank_prompts",
    "evaluate",
    "evaluate_timeline",
    "evaluate_with_backend",
    "measure_preferences",
    "parse_answer",
    "resolve_model",
    "scenario_prompts",
    "value_vector",
]
