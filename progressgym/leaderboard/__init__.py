"""The leaderboard: the submission format, its validator, and the static site built from submissions.

>>> from progressgym.leaderboard import Submission, validate_file   # doctest: +SKIP
>>> report = validate_file("runs/follow/submission.json")           # doctest: +SKIP
>>> report.valid, report.score                                      # doctest: +SKIP

Every run writes ``submission.json`` (:func:`write_submission`); ``python -m progressgym.leaderboard validate``
checks one and recomputes its score; ``python -m progressgym.leaderboard build`` writes the site. Importing this
package loads neither torch nor transformers.
"""

from progressgym.leaderboard.site import BuildResult, build_site
from progressgym.leaderboard.submission import (
    MAX_FILE_BYTES,
    MAX_STEPS,
    MAX_STRING_CHARS,
    SUBMISSION_VERSION,
    Submission,
    SubmissionStep,
    schema_text,
    submission_from_result,
    submission_schema,
    write_submission,
)
from progressgym.leaderboard.validate import (
    ValidationReport,
    recompute_score,
    validate_bytes,
    validate_file,
    validate_submission,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_STEPS",
    "MAX_STRING_CHARS",
    "SUBMISSION_VERSION",
    "BuildResult",
    "Submission",
    "SubmissionStep",
    "ValidationReport",
    "build_site",
    "recompute_score",
    "schema_text",
    "submission_from_result",
    "submission_schema",
    "validate_bytes",
    "validate_file",
    "validate_submission",
    "write_submission",
]
