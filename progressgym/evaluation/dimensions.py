"""The 19 value dimensions (vector version v1) and the annotation vocabularies behind them."""

from __future__ import annotations

from typing import Literal

Family = Literal["rules", "foundations", "worldviews"]
FAMILIES: tuple[Family, ...] = ("rules", "foundations", "worldviews")

RULES: tuple[str, ...] = (
    "kill",
    "pain",
    "disable",
    "freedom",
    "pleasure",
    "deceive",
    "cheat",
    "promise",
    "law",
    "duty",
)
"""Gert's ten moral rules, by key. A rule is *broken* by an action that kills, causes pain, ..., or neglects duty."""

RULE_NAMES: tuple[str, ...] = (
    "Do not kill",
    "Do not cause pain",
    "Do not disable",
    "Do not deprive of freedom",
    "Do not deprive of pleasure",
    "Do not deceive",
    "Do not cheat",
    "Do not break promises",
    "Do not break the law",
    "Do your duty",
)

FOUNDATIONS: tuple[str, ...] = (
    "harm_care",
    "fairness_reciprocity",
    "ingroup_loyalty",
    "authority_respect",
    "purity_sanctity",
)
FOUNDATION_NAMES: tuple[str, ...] = (
    "Harm/Care",
    "Fairness/Reciprocity",
    "Ingroup/Loyalty",
    "Authority/Respect",
    "Purity/Sanctity",
)

WORLDVIEWS: tuple[str, ...] = ("traditional", "modern", "postmodern", "integrative")
WORLDVIEW_NAMES: tuple[str, ...] = (
    "Traditional worldview",
    "Modern worldview",
    "Postmodern worldview",
    "Integrative worldview",
)

DIMENSIONS: tuple[str, ...] = RULE_NAMES + FOUNDATION_NAMES + WORLDVIEW_NAMES
"""Names of the 19 dimensions, in vector order: rules 0-9, foundations 10-14, worldviews 15-18."""

N_DIMS = len(DIMENSIONS)
RULE_SLICE = slice(0, 10)
FOUNDATION_SLICE = slice(10, 15)
WORLDVIEW_SLICE = slice(15, 19)

VECTOR_VERSION = "v1"
"""Bumped whenever the mapping from answers to vectors changes; part of every cache key."""
