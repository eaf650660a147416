"""stable-alignment, self-align, gpo and lab: configurations, helpers, one step each on tiny models, episodes."""

from __future__ import annotations

import dataclasses
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from progressgym.algorithms._config import preset_for_timeline, resolve_config
from progressgym.algorithms._judged import (
    chat_completion_ids,
    option_examples,
    sample_without_replacement,
    win_rates,
)
from progressgym.algorithms.gpo import GPOConfig
from progressgym.algorithms.lab import KNOWLEDGE, SKILLS, LABConfig, leaf_of, seed_examples, taxonomy
from progressgym.algorithms.self_align import PRINCIPLES, SelfAlignConfig
from progressgym.algorithms.stable_alignment import StableAlignmentConfig, ratings_from_likelihoods
from progressgym.core import QueryBudgetExceeded
from progressgym.error import InvalidInput, UnknownName
from progressgym.evaluation.items import Scenario
from progressgym.registration import algorithm_class, make_examinee, make_judge

CONFIGS = {
    "stable-alignment": StableAlignmentConfig,
    "self-align": SelfAlignConfig,
    "gpo": GPOConfig,
    "lab": LABConfig,
}

FOUR = Scenario(
    "four",
    "worldviews",
    "What gives a life meaning?",
    ("Faith and family.", "Success and reason.", "Community and feeling.", "Growth of the whole."),
    views=("traditional", "modern", "postmodern", "integrative"),
)


# ------------------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_configs_have_help_presets_and_resolve(name: str) -> None:
    cls = CONFIGS[name]
    assert algorithm_class(name).config_cls is cls
    fields = dataclasses.fields(cls)
    assert all(f.metadata.get("help") for f in fields)
    assert set(cls.PRESETS) == {"full", "mini"}
    open_fields = {f.name for f in fields if f.default is None}
    for preset, values in cls.PRESETS.items():
        assert set(values) == open_fields, preset
    for timeline in ("mini", "histllama3-8b"):
        config = resolve_config(cls, timeline)
        assert config.is_resolved and config.preset == preset_for_timeline(timeline)
    mini, full = resolve_config(cls, "mini"), resolve_config(cls, "histllama3-8b")
    assert (mini.answers, mini.threads, full.answers) == ("options", 1, "generate")


def test_full_presets_follow_the_originals() -> None:
    sa = resolve_config(StableAlignmentConfig, "histllama3-8b")
    assert (sa.num_comp, sa.rating_scale, sa.margin, sa.ratio, sa.learning_rate, sa.max_length) == (
        3,
        7,
        1.0,
        0.2,
        2e-5,
        480,
    )
    sal = resolve_config(SelfAlignConfig, "histllama3-8b")
    assert (sal.use_lora, sal.lora_r, sal.learning_rate, sal.exemplars, sal.max_length) == (
        True,
        16,
        4e-4,
        5,
        512,
    )
    gpo = resolve_config(GPOConfig, "histllama3-8b")
    assert (gpo.beta, gpo.learning_rate, gpo.optimizer, gpo.iterations, gpo.embedding_dim, gpo.tau) == (
        1e-3,
        5e-7,
        "rmsprop",
        3,
        6,
        0.1,
    )
    lab = resolve_config(LABConfig, "histllama3-8b")
    assert (lab.learning_rate, lab.epochs, lab.skills_epochs, lab.scale_factor, lab.seeds_per_leaf) == (
        2e-5,
        10.0,
        10.0,
        30,
        5,
    )


@pytest.mark.parametrize(
    ("cls", "override", "error"),
    [
        (StableAlignmentConfig, "num_comp=1", InvalidInput),
        (StableAlignmentConfig, "answers=speak", UnknownName),
        (GPOConfig, "embedding_dim=3", InvalidInput),
        (GPOConfig, "objective=dpo", UnknownName),
        (GPOConfig, "label_share=0", InvalidInput),
        (LABConfig, "replay_ratio=2", InvalidInput),
        (LABConfig, "min_rubric=4", InvalidInput),
        (SelfAlignConfig, "exemplars=0", InvalidInput),
        (SelfAlignConfig, "formats=open,vote", UnknownName),
    ],
)
def test_bad_settings_are_one_line_errors(cls: type, override: str, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        resolve_config(cls, "mini", [override])
    assert "\n" not in str(caught.value)


# ------------------------------------------------------------------------------------------------ helpers


def test_ratings_from_likelihoods_span_the_scale() -> None:
    assert ratings_from_likelihoods([-3.0, -3.0], 7) == pytest.approx([4.0, 4.0])
    high, low = ratings_from_likelihoods([0.0, -50.0], 7)
    assert high == pytest.approx(7.0) and low == pytest.approx(1.0)
    three = ratings_from_likelihoods([0.0, -50.0, -50.0], 7)
    assert three[0] == pytest.approx(7.0) and three[1] == pytest.approx(2.5)  # 1 + 6 * (0 + 1/2) / 2
    assert win_rates([1.0]) == [0.5]


def test_sampling_without_replacement_is_seeded_and_distinct() -> None:
    logps = [0.0, -1.0, -2.0, -0.5]
    a = sample_without_replacement(logps, 3, random.Random(1))
    assert a == sample_without_replacement(logps, 3, random.Random(1))
    assert len(set(a)) == 3 and a == sorted(a)
    assert sample_without_replacement(logps, 9, random.Random(1)) == [0, 1, 2, 3]
    # a response the model finds impossible is never drafted while others remain
    draws = {tuple(sample_without_replacement([0.0, 0.0, -1e9], 2, random.Random(s))) for s in range(20)}
    assert draws == {(0, 1)}


def test_option_examples_answer_with_the_chosen_actions() -> None:
    rows = option_examples(FOUR, [2, 0], ["open", "repeat"], orders="all")
    assert rows[0] == (
        [{"role": "user", "content": "What gives a life meaning?"}],
        ["Community and feeling.", "Faith and family."],
    )
    assert len(rows) == 1 + 4  # the four rotations of the option list
    assert all(answers == ["Community and feeling.", "Faith and family."] for _, answers in rows[1:])
    labels = option_examples(FOUR, [1], ["label"], orders="all")
    # rotations (0,1,2,3), (1,2,3,0), (2,3,0,1), (3,0,1,2): action 1 is shown at B, A, D, C
    assert [answers for _, answers in labels] == [["B"], ["A"], ["D"], ["C"]]
    one = option_examples(FOUR, [1], ["label", "repeat"], orders="one", rng=random.Random(0))
    assert len(one) == 2
    with pytest.raises(InvalidInput):
        option_examples(FOUR, [1], ["label"], orders="one")


def test_chat_completion_ids_split_where_the_reply_starts(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

    path = build_tiny_model(tmp_path / "m", corpus=DEFAULT_TINY_CORPUS[:20], seed=0)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    prompt = [{"role": "user", "content": "Hello there"}]
    prompt_ids, reply_ids = chat_completion_ids(tokenizer, prompt, "General Kenobi")
    full = tokenizer.apply_chat_template(
        [*prompt, {"role": "assistant", "content": "General Kenobi"}], tokenize=False
    )
    assert tokenizer.decode(prompt_ids + reply_ids) == full
    assert tokenizer.decode(reply_ids).startswith("General Kenobi")
    assert tokenizer.decode(reply_ids).rstrip().endswith("<|end|>")


def test_taxonomy_leaves_and_fixed_seeds() -> None:
    from progressgym.judges._common import load_item_bank

    scenarios = load_item_bank("core", None, "elicitation").scenarios
    tree = taxonomy(scenarios)
    assert sum(len(v) for v in tree.values()) == len(scenarios)
    assert all(leaf.split("/")[0] in (KNOWLEDGE, SKILLS) for leaf in tree)
    assert "compositional_skills/rules/kill" in tree and "knowledge/foundations/harm_care" in tree
    assert all(leaf_of(s) == leaf for leaf, members in tree.items() for s in members)
    leaf, members = next(iter(tree.items()))
    seeds = seed_examples(leaf, members, 3)
    assert len(seeds) == 3 and all(s in members for s in seeds)
    # the choice depends on the scenarios, not on their order (the same seeds at every step)
    assert {s.id for s in seed_examples(leaf, list(reversed(members)), 3)} == {s.id for s in seeds}


def test_principles_fit_the_mini_context() -> None:
    from progressgym.algorithms.self_align import principle_text

    assert len(PRINCIPLES) == 16 and len(principle_text()) < 1400


# ------------------------------------------------------------------------------- one step on tiny models

SMALL: dict[str, dict[str, Any]] = {
    "stable-alignment": {"preset": "mini", "max_scenarios": 6},
    "self-align": {"preset": "mini", "max_scenarios": 6, "exemplars": 2},
    "gpo": {"preset": "mini", "max_scenarios": 6, "gpm_epochs": 1.0},
    "lab": {"preset": "mini", "seeds_per_leaf": 1, "scale_factor": 1},
}


def _one_step(
    name: str, config: dict[str, Any], judge_kwargs: dict[str, Any], workdir: Path, **judge_extra: Any
) -> Any:
    judge = make_judge("follow", **judge_kwargs, **judge_extra)
    judge.reset(seed=3, workdir=workdir / "judge")
    examinee = make_examinee(name, config)
    (workdir / "examinee").mkdir(parents=True)
    examinee.reset(initial_model=judge.initial_model(), workdir=workdir / "examinee", seed=3)
    interface = judge.interface(0)
    model = examinee.update(interface, judge.step_info(0))
    return judge, examinee, interface, model


def _expected_queries(name: str, entry: dict[str, Any]) -> int:
    if name == "stable-alignment":
        return int(entry["scenarios"])
    if name == "self-align":
        return int(entry["exemplars"])
    if name == "gpo":
        return int(entry["labelled"])
    return int(entry["seeds"]) + 2 * int(entry["generated"])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_one_step_learns_and_counts_every_judge_query(
    name: str, judge_kwargs: dict[str, Any], tmp_path: Path
) -> None:
    judge, examinee, interface, model = _one_step(name, SMALL[name], judge_kwargs, tmp_path)
    entry = examinee.log[-1]  # type: ignore[attr-defined]
    assert Path(model.path) == tmp_path / "examinee" / "step-000"
    assert model.fingerprint != judge.initial_model().fingerprint
    assert interface.usage.queries == entry["queries"] == _expected_queries(name, entry) > 0
    assert (
        entry["examples"] > 0
        if "examples" in entry
        else entry["knowledge_examples"] + entry["skills_examples"] > 0
    )
    leftovers = sorted(p.name for p in (tmp_path / "examinee").iterdir())
    assert leftovers == ["step-000"]
    state = examinee.state_dict()
    assert state["settings"]["preset"] == "mini" and state["log"][0]["queries"] == entry["queries"]


def test_a_step_is_deterministic(judge_kwargs: dict[str, Any], tmp_path: Path) -> None:
    first = _one_step("stable-alignment", SMALL["stable-alignment"], judge_kwargs, tmp_path / "a")[3]
    second = _one_step("stable-alignment", SMALL["stable-alignment"], judge_kwargs, tmp_path / "b")[3]
    assert first.fingerprint == second.fingerprint


@pytest.mark.parametrize("name", ["stable-alignment", "lab"])
def test_the_query_budget_is_respected(name: str, judge_kwargs: dict[str, Any], tmp_path: Path) -> None:
    judge, examinee, interface, _ = _one_step(name, SMALL[name], judge_kwargs, tmp_path, query_budget=5)
    assert interface.usage.queries <= 5 and examinee.log[-1]["queries"] == interface.usage.queries  # type: ignore[attr-defined]


def test_the_judge_interface_refuses_beyond_the_budget(judge_kwargs: dict[str, Any], tmp_path: Path) -> None:
    # the algorithms stay under the budget because they ask affordable() first; the interface enforces it
    judge = make_judge("follow", **judge_kwargs, query_budget=1)
    judge.reset(seed=0, workdir=tmp_path)
    interface = judge.interface(0)
    with pytest.raises(QueryBudgetExceeded):
        interface.generate(["a", "b"])


# --------------------------------------------------------------------------------- generation paths (slow)

GENERATE: dict[str, dict[str, Any]] = {
    "stable-alignment": {
        "preset": "mini",
        "answers": "generate",
        "max_scenarios": 3,
        "num_comp": 2,
        "max_new_tokens": 6,
    },
    "self-align": {
        "preset": "mini",
        "answers": "generate",
        "max_scenarios": 4,
        "exemplars": 2,
        "questions": 3,
        "max_new_tokens": 6,
    },
    "gpo": {
        "preset": "mini",
        "answers": "generate",
        "max_scenarios": 3,
        "num_responses": 3,
        "max_new_tokens": 6,
    },
    "lab": {
        "preset": "mini",
        "answers": "generate",
        "seeds_per_leaf": 1,
        "scale_factor": 1,
        "max_new_tokens": 6,
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GENERATE))
def test_generated_answers_path(name: str, judge_kwargs: dict[str, Any], tmp_path: Path) -> None:
    judge, examinee, interface, model = _one_step(name, GENERATE[name], judge_kwargs, tmp_path)
    entry = examinee.log[-1]  # type: ignore[attr-defined]
    usage = interface.usage
    assert usage.queries == entry["queries"] > 0
    if name == "stable-alignment":  # one rating request per draft
        assert usage.queries == entry["scenarios"] * 2
    elif name == "self-align":  # the exemplars are generated by the judge
        assert usage.queries == entry["exemplars"] and usage.generated_tokens > 0
    elif name == "gpo":  # one comparison per pair of distinct responses (3 responses: at most 3 pairs)
        assert entry["labelled"] <= usage.queries <= 3 * entry["labelled"]
    else:  # seeds answered; each synthetic pair: question, answer, rubric
        assert usage.queries == entry["seeds"] + 3 * entry["generated"] and usage.generated_tokens > 0
    assert Path(model.path).name == "step-000" or model == judge.initial_model()


# ------------------------------------------------------------------------------------------ episodes (slow)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
def test_episode_and_resume(name: str, judge_kwargs: dict[str, Any], tmp_path: Path) -> None:
    from progressgym.runner import RESULT, completed_steps, resume_run, run_episode, step_path

    run_dir = tmp_path / "run"
    first = run_episode(
        make_judge("follow", **judge_kwargs),
        make_examinee(name, SMALL[name]),
        seed=2,
        run_dir=run_dir,
        algorithm=name,
    )
    assert not first.privileged and len(first.steps) >= 2
    assert first.usage.queries.queries == sum(s.queries.queries for s in first.steps) > 0
    last = len(first.steps) - 1
    step_path(run_dir, last).unlink()
    (run_dir / RESULT).unlink()
    shutil.rmtree(run_dir / "examinee" / f"step-{last:03d}")
    resumed = resume_run(run_dir)
    assert resumed.outcome() == first.outcome()
    assert [s.examinee_model for s in resumed.steps] == [s.examinee_model for s in first.steps]
    assert len(completed_steps(run_dir)) == len(first.steps)
