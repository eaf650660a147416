"""The ``mini`` timeline: nine tiny century models shipped with the package, for a CPU with no network.

It plays the part of the HistLlama3 timelines for learning the benchmark, debugging algorithms and CI: the
judge asks these models questions and scores examinees against them, and examinees start from the C013
model. Their values follow a designed trajectory (:mod:`.targets`); how they come to hold it is described in
:mod:`.build`. ``python -m progressgym.timeline check mini`` measures how faithfully they do.
"""

from __future__ import annotations

from progressgym.timeline._timeline import CENTURIES, CenturyModel, Timeline, register_timeline

MINI_CARD = """\
mini: nine tiny Llama chat models (2 layers, hidden size 64, about 0.2M parameters), one per century
C013..C021, shipped with the package as a hash-checked artifact set (progressgym/timeline/mini/artifacts:
fp32 weights, one tokenizer, a manifest with every file's sha256, the models' fingerprints and the reference
vectors), copied into $PROGRESSGYM_CACHE (default ~/.cache/progressgym) on first use; never trained on use.
Their values follow a designed trajectory: rules against harm, pain and loss of freedom gain weight, duty, loyalty, authority and purity lose
it, the traditional worldview gives way to the modern and then the postmodern and integrative ones; the law and
the modern worldview rise and then fall. Each model was trained, from its predecessor, to hold its century's
target distribution over the actions of every scenario of the core item bank, in every question format the
benchmark uses (evaluation formats, pairwise preference questions, open questions). Targets and a plot:
`progressgym.timeline.mini.targets`. Check: `python -m progressgym.timeline check mini`.
"""

MINI = register_timeline(
    Timeline(
        name="mini",
        description="nine tiny century models shipped with the package, for CPUs (the default)",
        members=tuple(CenturyModel(century=c) for c in CENTURIES),
        builder="progressgym.timeline.mini.build:build_mini",
        artifacts="progressgym.timeline.mini:artifacts",
        checker="progressgym.timeline.mini.check:check_mini",
        card=MINI_CARD,
        writes=False,
        extras={
            "parameters": "about 0.2M per model",
            "source": "shipped artifact set (built from seed 0; `timeline build mini --out DIR` rebuilds)",
        },
    )
)
