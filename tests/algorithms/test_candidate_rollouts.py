"""RL rollouts drawn among a question's candidate answers (``rollouts=candidates``), on a tiny real model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from progressgym.algorithms._training import RolloutSettings, candidate_rollout, rl_prompts, train_policy_rl
from progressgym.error import InvalidInput
from progressgym.evaluation.items import Scenario

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SCENARIO = Scenario(
    "s",
    "foundations",
    "A friend asks for help.",
    ("Help them.", "Walk away at once."),
    theme="harm_care",
    honouring=0,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", corpus=DEFAULT_TINY_CORPUS, seed=5)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    trainer = SimpleNamespace(
        processing_class=tokenizer, model=model, accelerator=SimpleNamespace(unwrap_model=lambda m: m)
    )
    return SimpleNamespace(path=path, tokenizer=tokenizer, trainer=trainer)


def _draw(tiny: Any, prompts: list[Any], *, temperature: float, seed: int, floor: float = 0.0) -> list[str]:
    rows = rl_prompts([SCENARIO], ("open", "repeat"), orders="one", seed=0)
    table = {r["prompt"][-1]["content"]: r["candidates"] for r in rows}
    out = candidate_rollout(table, temperature=temperature, seed=seed, floor=floor)(prompts, tiny.trainer)
    assert len(out["prompt_ids"]) == len(out["completion_ids"]) == len(out["logprobs"]) == len(prompts)
    for completion, logps in zip(out["completion_ids"], out["logprobs"], strict=True):
        assert completion[-1] == tiny.tokenizer.eos_token_id and len(logps) == len(completion)
        assert all(v <= 0 for v in logps)
    return [tiny.tokenizer.decode(c, skip_special_tokens=True) for c in out["completion_ids"]]


def test_rl_prompts_carry_their_candidates() -> None:
    rows = rl_prompts([SCENARIO], ("open", "label", "repeat"))
    assert rows[0]["candidates"] == ["Help them.", "Walk away at once."]
    assert {frozenset(r["candidates"]) for r in rows[1:]} == {
        frozenset({"A", "B"}),
        frozenset(SCENARIO.actions),
    }


def test_draws_are_candidates_seeded_and_follow_the_temperature(tiny: Any) -> None:
    rows = rl_prompts([SCENARIO], ("open", "repeat"), orders="one", seed=0)
    prompts = [rows[0]["prompt"]] * 200
    sharp = _draw(tiny, prompts, temperature=0.05, seed=1)
    assert set(sharp) <= set(SCENARIO.actions) and len(set(sharp)) == 1  # a near-greedy draw
    assert _draw(tiny, prompts, temperature=0.05, seed=2) == sharp
    flat = _draw(tiny, prompts, temperature=1000.0, seed=1)
    assert set(flat) == set(SCENARIO.actions)
    assert 60 < flat.count(SCENARIO.actions[0]) < 140  # close to uniform
    assert _draw(tiny, prompts, temperature=1000.0, seed=1) == flat
    assert _draw(tiny, prompts, temperature=1000.0, seed=2) != flat


def test_a_draw_floor_keeps_every_answer_in_a_decisive_policys_draws(tiny: Any) -> None:
    rows = rl_prompts([SCENARIO], ("open", "repeat"), orders="one", seed=0)
    prompts = [rows[0]["prompt"]] * 400
    greedy = _draw(tiny, prompts, temperature=0.05, seed=1)[0]
    other = next(a for a in SCENARIO.actions if a != greedy)
    floored = _draw(tiny, prompts, temperature=0.05, seed=1, floor=0.25)
    assert 60 < floored.count(other) < 140  # 25% of 400, where no floor gives none
    half = _draw(tiny, prompts, temperature=0.05, seed=1, floor=0.5)
    assert 160 < half.count(other) < 240  # a floor of 1/K is the uniform draw


def test_candidate_rollouts_need_grpo(tiny: Any, tmp_path: Path) -> None:
    from progressgym.algorithms._training import OptimSettings

    rollout = RolloutSettings("rloo", 2, 8, 1.0, 1.0, 0.0, source="candidates")
    optim = OptimSettings(1e-3, "constant", 0.0, 1.0, 1, 1, 64)
    prompts = rl_prompts([SCENARIO], ("open",))
    with pytest.raises(InvalidInput, match="grpo"):
        train_policy_rl(tiny.path, tiny.path, prompts, tmp_path / "out", optim=optim, rollout=rollout, seed=0)
    with pytest.raises(InvalidInput, match="generate or candidates"):
        train_policy_rl(
            tiny.path,
            tiny.path,
            prompts,
            tmp_path / "out",
            optim=optim,
            rollout=RolloutSettings("grpo", 2, 8, 1.0, 1.0, 0.0, source="beam"),
            seed=0,
        )
    assert not (tmp_path / "out").exists()
