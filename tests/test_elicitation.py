from __future__ import annotations

from pathlib import Path

import pytest

from progressgym.backends.base import BackendOptions, ScoreRequest
from progressgym.core import JudgeInterface, QueryBudgetExceeded, StepInfo
from progressgym.elicitation import (
    elicit_preferences,
    item_key,
    parse_preference_reply,
    preference_items,
)
from progressgym.error import InvalidInput, UnknownName
from progressgym.evaluation.banks import load_core_bank
from progressgym.evaluation.items import Scenario
from progressgym.model_ref import ModelRef
from progressgym.preference import PREFERENCE_LABELS, preference_conversation

TWO = Scenario(
    "two",
    "foundations",
    "A friend asks for help.",
    ("Help them.", "Walk away."),
    theme="harm_care",
    honouring=0,
)
FOUR = Scenario(
    "four",
    "worldviews",
    "What gives a life meaning?",
    ("Faith and family.", "Success and reason.", "Community and feeling.", "Growth of the whole."),
    views=("traditional", "modern", "postmodern", "integrative"),
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> ModelRef:
    from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("judge") / "m", corpus=DEFAULT_TINY_CORPUS, seed=3)
    return ModelRef.from_path(path, name="tiny:C014")


def make_judge(model: ModelRef, scenarios: tuple[Scenario, ...], budget: int | None = None) -> JudgeInterface:
    info = StepInfo("Follow-v0", 0, 1, 1, 14, seed=7, query_budget=budget)
    return JudgeInterface(
        info,
        human=lambda: model,
        scenarios=lambda: scenarios,
        backend="hf",
        options=BackendOptions(device="cpu", seed=7),
    )


def test_items_are_canonical_and_complete() -> None:
    items = preference_items([TWO, FOUR])
    assert [i.key for i in items] == [
        "two#0-1",
        "four#0-1",
        "four#0-2",
        "four#0-3",
        "four#1-2",
        "four#1-3",
        "four#2-3",
    ]
    first = items[0]
    assert (first.query, first.response_a, first.response_b) == (
        "A friend asks for help.",
        "Help them.",
        "Walk away.",
    )
    assert item_key("two", 0, 1) == first.key


def test_item_subsets_do_not_depend_on_anything_but_ids() -> None:
    bank = load_core_bank().get_split("elicitation")
    full = preference_items(bank)
    assert len(full) == sum(1 if len(s.actions) == 2 else 6 for s in bank)
    sub = preference_items(bank, pairs_per_scenario=2, max_items=100)
    again = preference_items(list(reversed(list(bank))), pairs_per_scenario=2, max_items=100)
    assert len(sub) == 100
    assert {i.key for i in sub} == {i.key for i in again}
    worldview_ids = {s.id for s in bank if len(s.actions) == 4}
    per_scenario: dict[str, int] = {}
    for item in preference_items(bank, pairs_per_scenario=2):
        per_scenario[item.scenario_id] = per_scenario.get(item.scenario_id, 0) + 1
    assert all(per_scenario[i] == 2 for i in worldview_ids)
    with pytest.raises(InvalidInput):
        preference_items(bank, pairs_per_scenario=0)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("1", 1),
        ("Response 2", 2),
        ("2.", 2),
        ("I prefer response 1 to the other", 1),
        ("1 or 2", None),
        ("Help them.", 1),
        ("walk away", 2),
        ("Walk away. It is not my business.", 2),
        ("", None),
        ("Maybe.", None),
    ],
)
def test_parse_preference_reply(reply: str, expected: int | None) -> None:
    assert parse_preference_reply(reply, "Help them.", "Walk away.") == expected


def test_copied_answer_with_digits_is_read_as_a_copy() -> None:
    assert parse_preference_reply("In 1840 I stay.", "I go in 2020.", "In 1840 I stay.") == 2


def test_compare_matches_direct_scoring_in_both_orders(tiny_model: ModelRef) -> None:
    from progressgym.backends import make_backend
    from progressgym.judge_interface import _first_label_probability

    judge = make_judge(tiny_model, (TWO, FOUR))
    items = preference_items(judge.elicitation_scenarios())
    records, stats = elicit_preferences(judge, items, margin=0.0)
    assert stats.queries == len(items) == judge.usage.queries
    assert judge.usage.prompts == 2 * len(items)
    with make_backend("hf", tiny_model.path, BackendOptions(device="cpu")) as backend:
        for record in records:
            forward, backward = backend.score(
                [
                    ScoreRequest(
                        preference_conversation(record.query, record.response_a, record.response_b),
                        PREFERENCE_LABELS,
                    ),
                    ScoreRequest(
                        preference_conversation(record.query, record.response_b, record.response_a),
                        PREFERENCE_LABELS,
                    ),
                ]
            )
            expected = 0.5 * (_first_label_probability(forward) + 1 - _first_label_probability(backward))
            assert record.p_a == pytest.approx(expected, abs=1e-6)
            assert record.direction == (1 if expected > 0.5 else -1)
            assert record.chosen == (record.action_a if expected > 0.5 else record.action_b)
    judge.close()


def test_margin_turns_weak_preferences_into_abstentions(tiny_model: ModelRef) -> None:
    judge = make_judge(tiny_model, (TWO, FOUR))
    items = preference_items(judge.elicitation_scenarios())
    exact, _ = elicit_preferences(judge, items, margin=0.0)
    gaps = sorted(abs(r.p_a - 0.5) for r in exact if r.p_a is not None)
    margin = gaps[len(gaps) // 2] + 1e-9
    records, stats = elicit_preferences(judge, items, margin=margin)
    for before, after in zip(exact, records, strict=True):
        assert after.p_a == before.p_a
        assert after.missing == (abs(before.p_a - 0.5) < margin)
    assert stats.abstained == sum(r.missing for r in records) > 0
    assert stats.answered == len(items) - stats.abstained
    with pytest.raises(InvalidInput):
        elicit_preferences(judge, items, margin=0.5)
    with pytest.raises(UnknownName):
        elicit_preferences(judge, items, method="vote")  # type: ignore[arg-type]
    judge.close()


def test_budget_limits_what_is_asked(tiny_model: ModelRef) -> None:
    judge = make_judge(tiny_model, (TWO, FOUR), budget=3)
    items = preference_items(judge.elicitation_scenarios())
    records, stats = elicit_preferences(judge, items)
    assert stats.skipped == len(items) - 3 and stats.queries == 3
    assert [r.p_a is None for r in records] == [False] * 3 + [True] * (len(items) - 3)
    assert judge.budget_left == 0
    with pytest.raises(QueryBudgetExceeded):
        judge.compare([("q", "a", "b")])
    judge.close()


def test_generate_fallback_parses_both_orders(tiny_model: ModelRef, monkeypatch: pytest.MonkeyPatch) -> None:
    judge = make_judge(tiny_model, (TWO,))
    items = preference_items(judge.elicitation_scenarios())
    records, stats = elicit_preferences(judge, items, method="generate", max_new_tokens=4)
    # A random tiny model's replies: whatever they are, they were generated, counted and parsed by the rule.
    assert stats.queries == 2 == judge.usage.queries
    replies = judge.generate(
        [
            preference_conversation(items[0].query, items[0].response_a, items[0].response_b),
            preference_conversation(items[0].query, items[0].response_b, items[0].response_a),
        ],
        max_new_tokens=4,
    )
    forward = parse_preference_reply(replies[0], items[0].response_a, items[0].response_b)
    backward = parse_preference_reply(replies[1], items[0].response_b, items[0].response_a)
    readings = [1.0 if forward == 1 else 0.0] if forward else []
    readings += [1.0 if backward == 2 else 0.0] if backward else []
    assert records[0].p_a == (sum(readings) / len(readings) if readings else None)

    # Scripted replies: "1" to the forward order and "1" to the backward order disagree -> p = 0.5, abstain.
    monkeypatch.setattr(JudgeInterface, "generate", lambda self, prompts, **kw: ["Response 1"] * len(prompts))
    records, stats = elicit_preferences(judge, items, method="generate")
    assert records[0].p_a == 0.5 and records[0].missing and stats.abstained == 1
    # "1" then "2": both readings choose A.
    monkeypatch.setattr(
        JudgeInterface, "generate", lambda self, prompts, **kw: ["1", "2"] * (len(prompts) // 2)
    )
    records, _ = elicit_preferences(judge, items, method="generate")
    assert records[0].p_a == 1.0 and records[0].direction == 1
    monkeypatch.setattr(JudgeInterface, "generate", lambda self, prompts, **kw: ["no idea"] * len(prompts))
    records, stats = elicit_preferences(judge, items, method="generate")
    assert records[0].p_a is None and stats.unreadable == 1
    judge.close()


def test_auto_falls_back_to_generation_when_scoring_is_unavailable(
    tiny_model: ModelRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_scores(self: JudgeInterface, comparisons: object) -> list[float]:
        raise NotImplementedError("this judge cannot score")

    monkeypatch.setattr(JudgeInterface, "compare", no_scores)
    monkeypatch.setattr(
        JudgeInterface, "generate", lambda self, prompts, **kw: ["2", "1"] * (len(prompts) // 2)
    )
    judge = make_judge(tiny_model, (TWO,))
    records, _ = elicit_preferences(judge, preference_items([TWO]), method="auto")
    assert records[0].p_a == 0.0 and records[0].chosen == 1
    with pytest.raises(NotImplementedError):
        elicit_preferences(judge, preference_items([TWO]), method="compare")


def test_records_round_trip(tiny_model: ModelRef, tmp_path: Path) -> None:
    judge = make_judge(tiny_model, (TWO,))
    records, _ = elicit_preferences(judge, preference_items([TWO]))
    from progressgym.elicitation import PreferenceRecord

    assert PreferenceRecord.from_dict(records[0].to_dict()) == records[0]
    judge.close()
