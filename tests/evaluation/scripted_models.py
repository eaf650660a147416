"""Scripted test models that answer by reading OUR prompt text, never by looking at PromptItem's mapping.

Each backend parses the displayed options out of the prompt (``A. ...`` lines, ``First option:`` /
``Second option:`` lines, ``- ...`` lines), so what it prefers is decided by what an option SAYS (content) or
WHERE it is shown (position / label), independently of the ``candidate_action`` mapping under test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from progressgym.backends.base import Backend, BackendOptions, GenerateRequest, ScoreRequest
from progressgym.evaluation.items import ItemBank, Scenario
from progressgym.evaluation.prompts import clean_option

Utility = Callable[[str, str], float]  # (context, option text) -> utility


def parse_prompt(text: str) -> tuple[str, list[str], str]:
    """(context, displayed options in order, format) read back from a prompt's text."""
    context, _, rest = text.partition("\n\n")
    lines = rest.splitlines()
    labelled = [m.group(1) for line in lines if (m := re.match(r"^[A-D]\. (.*)$", line))]
    if labelled:
        return context, labelled, "label"
    first = [line.removeprefix("First option: ") for line in lines if line.startswith("First option: ")]
    second = [line.removeprefix("Second option: ") for line in lines if line.startswith("Second option: ")]
    if first and second:
        return context, [first[0], second[0]], "yesno"
    listed = [line[2:] for line in lines if line.startswith("- ")]
    assert listed, f"cannot read the options of {text!r}"
    return context, listed, "repeat"


def candidate_positions(text: str, candidates: Iterable[str]) -> tuple[str, list[str], list[int | None]]:
    """For each candidate, the displayed position it names, read from the prompt text alone."""
    context, options, fmt = parse_prompt(text)
    positions: list[int | None] = []
    for candidate in candidates:
        if fmt == "label":
            positions.append("ABCD".index(candidate) if candidate in "ABCD"[: len(options)] else None)
        elif fmt == "yesno":
            positions.append({"Yes": 0, "No": 1}.get(candidate))
        else:
            positions.append(options.index(candidate) if candidate in options else None)
    return context, options, positions


class ScriptedBackend(Backend):
    """Log-likelihoods from a rule: by content (``utility``), by position, or by label.

    Args:
        utility: ``(context, option) -> float``; the candidate naming an option gets ``strength * utility``.
        position: Prefer the option displayed at this position (log-likelihood 0 there, -``strength`` else).
        label: Prefer this literal candidate ("A", "Yes"); other candidates get -``strength``.
        reply_style: For ``generate``: how to phrase the chosen option's answer (see :meth:`_reply`).
    """

    name = "scripted"

    def __init__(
        self,
        model_path: str = "scripted",
        options: BackendOptions | None = None,
        *,
        utility: Utility | None = None,
        position: int | None = None,
        label: str | None = None,
        strength: float = 4.0,
        reply_style: int = 0,
        refuse_every: int = 0,
        garble_every: int = 0,
    ) -> None:
        super().__init__(model_path, options)
        if utility is None and position is None and label is None:
            utility, position, label = _from_model_dir(Path(model_path))
        self.utility, self.position, self.label = utility, position, label
        self.strength, self.reply_style = strength, reply_style
        self.refuse_every, self.garble_every = refuse_every, garble_every
        self.calls = 0

    def _loglik(self, context: str, options: list[str], candidate: str, position: int | None) -> float:
        if self.label is not None:
            return 0.0 if candidate == self.label else -self.strength
        if position is None:
            return -50.0
        if self.position is not None:
            return 0.0 if position == self.position else -self.strength
        assert self.utility is not None
        return self.strength * self.utility(context, options[position])

    def _score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        self.calls += 1
        out = []
        for request in requests:
            text = request.prompt[-1].content
            context, options, positions = candidate_positions(text, request.candidates)
            out.append(
                [
                    self._loglik(context, options, c, p)
                    for c, p in zip(request.candidates, positions, strict=True)
                ]
            )
            self.usage.forward_tokens += len(text.split()) + sum(len(c.split()) for c in request.candidates)
        return out

    def _generate(self, requests: list[GenerateRequest]) -> list[str]:
        self.calls += 1
        replies = []
        for index, request in enumerate(requests):
            text = request.prompt[-1].content
            context, options, fmt = parse_prompt(text)
            if self.refuse_every and index % self.refuse_every == 0:
                replies.append("As an AI language model, I cannot choose between these options.")
                continue
            if self.garble_every and index % self.garble_every == 0:
                replies.append("The weather is lovely today.")
                continue
            if self.utility is not None:
                best = max(range(len(options)), key=lambda i: self.utility(context, options[i]))  # type: ignore[misc]
            else:
                best = self.position if self.position is not None else 0
            replies.append(self._reply(fmt, options, best))
            self.usage.forward_tokens += len(text.split()) + 4
            self.usage.generated_tokens += 4
        return replies

    def _reply(self, fmt: str, options: list[str], best: int) -> str:
        style = self.reply_style
        letter = "ABCD"[best]
        if fmt == "label":
            forms = [
                letter,
                f"({letter.lower()})",
                f"Option {letter}",
                f"{letter.lower()}.",
                f"Answer: {letter}",
            ]
            return forms[style % len(forms)]
        if fmt == "yesno":
            forms = [("Yes", "No"), ("yes.", "no."), ("Yes, I do.", "No, I prefer the second.")]
            return forms[style % len(forms)][best]
        text = options[best]
        forms = [text, text.lower().rstrip("."), f"- {text}", f'"{text}"']
        return forms[style % len(forms)]


def _from_model_dir(path: Path) -> tuple[Utility | None, int | None, str | None]:
    """A scripted 'model directory': ``script.json`` with {"position": p} or {"label": l} or {"table": ...}."""
    spec = json.loads((path / "script.json").read_text())
    if "position" in spec:
        return None, int(spec["position"]), None
    if "label" in spec:
        return None, None, str(spec["label"])
    table = {(c, o): float(u) for c, o, u in spec["table"]}
    return (lambda c, o: table.get((c, o), 0.0)), None, None


def utility_table(
    bank: ItemBank | Iterable[Scenario], per_action: Callable[[Scenario, int], float]
) -> dict[tuple[str, str], float]:
    """(displayed context, displayed option) -> utility, for every action of every scenario."""
    table: dict[tuple[str, str], float] = {}
    for scenario in bank:
        context = " ".join(scenario.context.split())
        for action, text in enumerate(scenario.actions):
            table[(context, clean_option(text))] = per_action(scenario, action)
    return table


def keeps_rules(scenario: Scenario, action: int) -> float:
    """Utility of a rule keeper: minus the rules the action breaks (foundations: honouring = 1)."""
    if scenario.family == "rules":
        assert scenario.breaks is not None
        return -float(sum(b is True for b in scenario.breaks[action]))
    if scenario.family == "foundations":
        return 1.0 if action == scenario.honouring else 0.0
    return 0.0


def breaks_rules(scenario: Scenario, action: int) -> float:
    """The mirror of :func:`keeps_rules`."""
    return -keeps_rules(scenario, action)


def prefers_view(view: str) -> Callable[[Scenario, int], float]:
    """Utility of a model that likes one worldview (and is indifferent elsewhere)."""

    def per_action(scenario: Scenario, action: int) -> float:
        if scenario.family != "worldviews":
            return 0.0
        assert scenario.views is not None
        return 1.0 if scenario.views[action] == view else 0.0

    return per_action


def scripted_model_dir(directory: Path, spec: dict[str, object]) -> Path:
    """Write a scripted model directory (``script.json`` plus a ``config.json`` so it looks like a model)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "script.json").write_text(json.dumps(spec))
    (directory / "config.json").write_text(json.dumps({"model_type": "scripted"}))
    return directory


def build_scripted_timeline(timeline, directory: Path) -> None:
    """Builder of a test timeline: C013 prefers the first-displayed option, later centuries answer 'A'."""
    for index, member in enumerate(timeline.members):
        spec: dict[str, object] = {"position": 0} if index == 0 else {"label": "A"}
        scripted_model_dir(directory / member.code, spec)
