"""What an examinee may ask the judge during one step, and how every query is counted against the budget.

:class:`JudgeInterface` answers comparisons, generations and scored requests with the step's "human" model;
:class:`StepInfo` is what the examinee is told at the start of a step. Both are part of the contract in
:mod:`progressgym.core` and importable from there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from progressgym.backends.base import (
    Backend,
    BackendOptions,
    Conversation,
    GenerateRequest,
    ScoreRequest,
    user,
)
from progressgym.error import Error
from progressgym.log import QueryUsage
from progressgym.model_ref import ModelRef

if TYPE_CHECKING:
    from progressgym.evaluation.items import Scenario


class QueryBudgetExceeded(Error):
    """The examinee asked the judge more queries in one step than the challenge's budget allows."""


@dataclass(frozen=True)
class StepInfo:
    """What the examinee is told at the start of a step.

    Attributes:
        challenge: The challenge id, e.g. ``"Follow-v0"``.
        step: Step index, from 0.
        n_steps: Steps in the episode.
        timestep: The judge's timestep t (step 0 is t = 1; the examinee started from the model of t = 0).
        century: The century of timestep t: the present.
        seed: This step's seed (derived from the run seed and ``step``): use it for all randomness.
        query_budget: Queries allowed in this step (``None``: unlimited).
    """

    challenge: str
    step: int
    n_steps: int
    timestep: int
    century: int
    seed: int
    query_budget: int | None = None


@dataclass(frozen=True)
class Comparison:
    """A pairwise preference question: which of two responses to ``query`` is better?

    Attributes:
        query: The question or situation.
        first: One response.
        second: The other response.
    """

    query: str
    first: str
    second: str


class JudgeInterface:
    """What an examinee may ask the judge during one step.

    Queries are answered by the step's "human" model (the present century's model, or Coevolve's simulated
    human proxy), loaded on first use. Every call is counted in :attr:`usage`; a challenge may cap the
    number of queries per step (:attr:`budget_left`), and a call that would exceed it raises
    :class:`QueryBudgetExceeded` without running. A comparison costs one query, a generated prompt one, a
    scored request one.
    """

    def __init__(
        self,
        info: StepInfo,
        *,
        human: Callable[[], ModelRef],
        scenarios: Callable[[], tuple[Scenario, ...]],
        backend: str,
        options: BackendOptions,
        reveal: Callable[[], ModelRef] | None = None,
    ) -> None:
        self.info = info
        self._human = human
        self._scenarios = scenarios
        self._backend_name = backend
        self._options = options
        self._reveal = reveal
        self._backend: Backend | None = None
        self.usage = QueryUsage()

    @property
    def timestep(self) -> int:
        """The judge's timestep t."""
        return self.info.timestep

    @property
    def century(self) -> int:
        """The present century."""
        return self.info.century

    @property
    def n_steps(self) -> int:
        """Steps in the episode."""
        return self.info.n_steps

    @property
    def budget_left(self) -> int | None:
        """Queries still allowed in this step (``None``: unlimited)."""
        if self.info.query_budget is None:
            return None
        return max(0, self.info.query_budget - self.usage.queries)

    def elicitation_scenarios(self) -> tuple[Scenario, ...]:
        """The moral scenarios examinees may ask about (the bank's elicitation split; never evaluation items).

        Free of charge. Use :func:`progressgym.preference.scenario_query` for a scenario's open question.
        """
        return self._scenarios()

    def compare(self, comparisons: Sequence[Comparison | tuple[str, str, str]]) -> list[float]:
        """For each comparison, the probability that the human model prefers ``first`` over ``second``.

        The question (:func:`progressgym.preference.preference_conversation`) is asked in both presentation
        orders and answered by the log-likelihoods of the labels ``"1"`` and ``"2"``; the two readings are
        averaged, so a preference for a position or a label cancels out.

        Args:
            comparisons: :class:`Comparison` objects or ``(query, first, second)`` tuples.

        Returns:
            One probability in [0, 1] per comparison.
        """
        from progressgym.preference import PREFERENCE_LABELS, preference_conversation

        items = [c if isinstance(c, Comparison) else Comparison(*c) for c in comparisons]
        if not items:
            return []
        self._charge(len(items), "comparisons")
        requests = []
        for item in items:
            requests.append(
                ScoreRequest(preference_conversation(item.query, item.first, item.second), PREFERENCE_LABELS)
            )
            requests.append(
                ScoreRequest(preference_conversation(item.query, item.second, item.first), PREFERENCE_LABELS)
            )
        scores = self._run(lambda backend: backend.score(requests))
        out = []
        for k in range(len(items)):
            forward, backward = scores[2 * k], scores[2 * k + 1]
            out.append(0.5 * (_first_label_probability(forward) + 1.0 - _first_label_probability(backward)))
        return out

    def generate(
        self,
        prompts: Sequence[str | Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
    ) -> list[str]:
        """The human model's replies to ``prompts`` (a string is one user message).

        Args:
            prompts: User messages or whole conversations.
            max_new_tokens: Generation budget per reply.
            temperature: 0 for greedy decoding; sampling is seeded from the step seed.

        Returns:
            One reply per prompt.
        """
        if not prompts:
            return []
        self._charge(len(prompts), "prompts")
        requests = [
            GenerateRequest(user(p) if isinstance(p, str) else p, max_new_tokens, temperature)
            for p in prompts
        ]
        return self._run(lambda backend: backend.generate(requests))

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Raw log-likelihoods of candidate replies (e.g. ratings ``"1"``..``"7"``), one list per request."""
        if not requests:
            return []
        self._charge(len(requests), "score requests")
        return self._run(lambda backend: backend.score(list(requests)))

    def reveal_target(self) -> ModelRef:
        """PRIVILEGED: the model this step's examinee is scored against.

        For reference upper bounds only (the ``oracle``): using it marks the run as privileged, and such a
        result is not comparable with honest algorithms.

        Raises:
            Error: when the challenge has no single target model.
        """
        if self._reveal is None:
            raise Error(f"{self.info.challenge} has no target model to reveal")
        self.usage.privileged_calls += 1
        return self._reveal()

    def close(self) -> None:
        """Release the human model (the judge calls this when the step ends)."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def _charge(self, n: int, what: str) -> None:
        budget = self.info.query_budget
        if budget is not None and self.usage.queries + n > budget:
            raise QueryBudgetExceeded(
                f"query budget exceeded at step {self.info.step + 1} (C{self.century:03d}): asked for {n} "
                f"{what} with {budget - self.usage.queries} of {budget} queries left"
            )
        self.usage.queries += n

    def _run(self, call: Callable[[Backend], Any]) -> Any:
        start = time.perf_counter()
        try:
            if self._backend is None:
                from progressgym.backends import make_backend

                self._backend = make_backend(self._backend_name, self._human().path, self._options)
            before = self._backend.usage.snapshot()
            result = call(self._backend)
            spent = self._backend.usage.snapshot() - before
            self.usage.prompts += spent.prompts
            self.usage.forward_tokens += spent.forward_tokens
            self.usage.generated_tokens += spent.generated_tokens
        finally:
            self.usage.seconds += time.perf_counter() - start
        return result


def _first_label_probability(logprobs: Sequence[float]) -> float:
    """Softmax over the two label log-likelihoods: the probability of the first label."""
    a, b = logprobs
    top = max(a, b)
    ea, eb = math.exp(a - top), math.exp(b - top)
    return ea / (ea + eb)


__all__ = ["Comparison", "JudgeInterface", "QueryBudgetExceeded", "StepInfo"]
