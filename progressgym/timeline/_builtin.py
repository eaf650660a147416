"""The built-in timelines: ProgressGym's HistLlama3 models on the Hugging Face hub."""

from __future__ import annotations

from progressgym.timeline._timeline import CENTURIES, CenturyModel, Timeline, century_code, register_timeline

_HUB_ORG = "PKU-Alignment"
# Published versions: the 8B models are at v0.2, the 70B models at v0.1.
_VERSIONS = {"8B": "v0.2", "70B": "v0.1"}

HISTLLAMA3_CARD = """\
HistLlama3 (ProgressGym): Meta-Llama-3 continued-pretrained on one century of the ProgressGym-HistText corpus
each (13th to 21st century), then instruction-tuned on TimelessQA (about 3,000 timeless, value-neutral
instructions), so that each model speaks with the values of its century. 36 models: 8B and 70B, pretrain and
instruct. Licence: see each model card on the hub. The 8B models need one GPU with about 16 GB for inference;
the 70B models need several (vLLM tensor parallelism). Download ahead of time with
`hf download REPO_ID --local-dir DIR/REPO_NAME`, then pass `--model-dir DIR`.
"""


def histllama3_timeline(size: str, variant: str) -> Timeline:
    """The timeline of HistLlama3 models of one size (``"8B"``/``"70B"``) and variant (``"instruct"``/``"pretrain"``)."""
    version = _VERSIONS[size]
    members = []
    for century in CENTURIES:
        short = f"{size}-{century_code(century)}-{variant}"
        repo_name = f"ProgressGym-HistLlama3-{short}-{version}"
        members.append(
            CenturyModel(
                century=century,
                repo_id=f"{_HUB_ORG}/{repo_name}",
                local_names=(repo_name, short, f"ProgressGym-HistLlama3-{short}"),
            )
        )
    suffix = "" if variant == "instruct" else "-pretrain"
    return Timeline(
        name=f"histllama3-{size.lower()}{suffix}",
        description=f"ProgressGym HistLlama3 {size} {variant} models, 13th-21st century (hub {version})",
        members=tuple(members),
        card=HISTLLAMA3_CARD,
        extras={"parameters": size, "variant": variant, "source": "Hugging Face hub"},
    )


# The miniature timeline registers first: it is the default.
from progressgym.timeline import mini as _mini  # noqa: E402,F401

for _size in ("8B", "70B"):
    for _variant in ("instruct", "pretrain"):
        register_timeline(histllama3_timeline(_size, _variant))
