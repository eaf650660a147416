"""Timelines of century models: which model stands for which century, and where it lives.

>>> from progressgym.timeline import get_timeline
>>> get_timeline("histllama3-8b").member("C013").repo_id
'PKU-Alignment/ProgressGym-HistLlama3-8B-C013-instruct-v0.2'
"""

from progressgym.timeline import _builtin
from progressgym.timeline._artifacts import ArtifactError, artifact_dir, load_manifest, manifest_hash
from progressgym.timeline._resolve import (
    MODEL_DIR_ENV,
    built_timeline_dir,
    resolve_model,
    timeline_cache_dir,
)
from progressgym.timeline._timeline import (
    CENTURIES,
    TIMELINES,
    CenturyModel,
    Timeline,
    century_code,
    get_timeline,
    list_timelines,
    parse_century,
    register_timeline,
    shipped_evaluation,
)

__all__ = [
    "CENTURIES",
    "ArtifactError",
    "artifact_dir",
    "load_manifest",
    "manifest_hash",
    "shipped_evaluation",
    "MODEL_DIR_ENV",
    "TIMELINES",
    "CenturyModel",
    "Timeline",
    "built_timeline_dir",
    "century_code",
    "get_timeline",
    "list_timelines",
    "parse_century",
    "register_timeline",
    "resolve_model",
    "timeline_cache_dir",
]
