"""progressgym: a benchmark for progress alignment.

Can an alignment algorithm keep up with, anticipate, and not freeze the way human values change over time?
progressgym walks an *examinee* (an alignment algorithm and the model it trains) through nine centuries of
historical language models and scores how well its values track theirs.

Importing this package is cheap: torch, transformers and vLLM load only when a model is used.
"""

from __future__ import annotations

import progressgym.judges  # registers the challenges and their Gymnasium environments (progressgym/Follow-v0, ...)
from progressgym._version import __version__
from progressgym.core import Examinee, Judge, JudgeInterface, StepInfo
from progressgym.error import (
    DependencyNotInstalled,
    Error,
    EvaluationError,
    InvalidInput,
    ModelNotFound,
    UnknownName,
)
from progressgym.log import RunResult
from progressgym.model_ref import ModelRef
from progressgym.registration import make_judge, register_algorithm, register_challenge
from progressgym.runner import run_episode
from progressgym.timeline import Timeline, get_timeline, list_timelines, register_timeline

__all__ = [
    "DependencyNotInstalled",
    "Error",
    "EvaluationError",
    "Examinee",
    "InvalidInput",
    "Judge",
    "JudgeInterface",
    "ModelNotFound",
    "ModelRef",
    "RunResult",
    "StepInfo",
    "Timeline",
    "UnknownName",
    "__version__",
    "get_timeline",
    "list_timelines",
    "make_judge",
    "register_algorithm",
    "register_challenge",
    "register_timeline",
    "run_episode",
]
