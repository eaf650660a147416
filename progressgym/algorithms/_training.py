"""Shared plumbing of the baseline algorithms: preference pairs -> training examples -> TRL trainers.

How a preference becomes training data. A judge's preference between two actions of an elicitation scenario
becomes a :class:`TrainingPair` (chosen action, rejected action, copies). Each pair is then written in every
way the moral evaluation asks a question (:mod:`progressgym.evaluation.prompts`), always on *elicitation*
scenarios, never on evaluation ones:

* ``open``: the scenario's open question (:func:`progressgym.preference.scenario_query`), answered with the
  chosen action's text vs the rejected action's text;
* ``label``: the options listed as ``A.``/``B.`` (``A``-``D`` for four actions), in every cyclic order; the
  chosen answer is the letter the chosen action has in that order;
* ``yesno`` (two actions): "do you prefer the first option over the second?" in both orders, ``Yes``/``No``;
* ``repeat``: the options listed, in every cyclic order; the answer is the option's text.

A four-action scenario's pair keeps its two actions' letters/texts within the four-option prompt. Every
example of a pair is repeated ``copies`` times (the confidence weight of lifelong algorithms, the
extrapolated multiplicity of extrapolative ones). Teaching the preference in the evaluation's own formats is
what lets it show in the value vector: the evaluation reads these very answers' log-likelihoods, on other
scenarios that measure the same values.

Trainers (TRL, imported only when training): :func:`train_dpo` (``DPOTrainer``), :func:`train_reward_model`
(``RewardTrainer`` on ``AutoModelForSequenceClassification`` with one label, initialised from the policy) and
:func:`train_policy_rl` (``RLOOTrainer`` or ``GRPOTrainer`` with the reward model as reward function,
rollouts by transformers ``generate``). Each writes a complete model folder to a temporary sibling of its
output directory and renames it into place, so the output directory holds either nothing or a whole model.

The code lives in :mod:`~progressgym.algorithms._examples` (training examples),
:mod:`~progressgym.algorithms._trainers` (settings, DPO, the reward model) and
:mod:`~progressgym.algorithms._rollouts` (on-policy RL); this module gathers their names.
"""

from progressgym._paths import staged_output
from progressgym.algorithms._examples import (
    EXAMPLE_FORMATS,
    ORDER_MODES,
    WEIGHTINGS,
    TrainingPair,
    confidence_copies,
    format_prompts,
    pair_examples,
    pairs_from_records,
    parse_formats,
    preference_examples,
    rl_prompts,
)
from progressgym.algorithms._rollouts import (
    ROLLOUT_SOURCES,
    RolloutSettings,
    candidate_rollout,
    train_policy_rl,
)
from progressgym.algorithms._trainers import (
    LoraSettings,
    OptimSettings,
    TrainingRun,
    torch_threads,
    train_dpo,
    train_reward_model,
    training_run,
    use_cpu,
)

__all__ = [
    "EXAMPLE_FORMATS",
    "ORDER_MODES",
    "WEIGHTINGS",
    "LoraSettings",
    "OptimSettings",
    "ROLLOUT_SOURCES",
    "RolloutSettings",
    "TrainingPair",
    "candidate_rollout",
    "confidence_copies",
    "format_prompts",
    "pair_examples",
    "pairs_from_records",
    "parse_formats",
    "preference_examples",
    "rl_prompts",
    "TrainingRun",
    "staged_output",
    "torch_threads",
    "training_run",
    "train_dpo",
    "train_policy_rl",
    "train_reward_model",
    "use_cpu",
]
