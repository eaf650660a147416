"""Built-in algorithms (Examinee subclasses), listed lazily: name -> ``"module:Class"``.

Importing this package imports none of them; :func:`progressgym.registration.algorithm_class` imports one
when it is asked for. To add an algorithm, write ``progressgym/algorithms/<name>.py`` with a class decorated
``@register_algorithm("<name>")`` and add one line below.
"""

from __future__ import annotations

ALGORITHMS: dict[str, str] = {
    "static": "progressgym.algorithms.reference:StaticExaminee",
    "oracle": "progressgym.algorithms.reference:OracleExaminee",
    "lifelong-dpo": "progressgym.algorithms.lifelong_dpo:LifelongDPOExaminee",
    "lifelong-rlhf": "progressgym.algorithms.lifelong_rlhf:LifelongRLHFExaminee",
    "extrapolative-dpo": "progressgym.algorithms.extrapolative_dpo:ExtrapolativeDPOExaminee",
    "extrapolative-rlhf": "progressgym.algorithms.extrapolative_rlhf:ExtrapolativeRLHFExaminee",
    "stable-alignment": "progressgym.algorithms.stable_alignment:StableAlignmentExaminee",
    "self-align": "progressgym.algorithms.self_align:SelfAlignExaminee",
    "gpo": "progressgym.algorithms.gpo:GPOExaminee",
    "lab": "progressgym.algorithms.lab:LABExaminee",
    "ns-dpo": "progressgym.algorithms.ns_dpo:NSDPOExaminee",
}
"""Algorithm name -> ``"module:Class"``."""

DEFAULT_ALGORITHM = "lifelong-dpo"
"""What ``python -m progressgym.run`` runs when no ``--algorithm`` is given."""

__all__ = ["ALGORITHMS", "DEFAULT_ALGORITHM"]
