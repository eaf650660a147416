from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import progressgym  # noqa: F401

ENV_IDS = ["progressgym/Follow-v0", "progressgym/Predict-v0", "progressgym/Coevolve-v1"]


def test_importing_progressgym_registers_every_challenge():
    registered = [k for k in gymnasium.registry if k.startswith("progressgym/")]
    assert set(ENV_IDS) <= set(registered)
    assert gymnasium.spec("progressgym/Predict-v0").kwargs == {"challenge": "Predict-v0"}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_passes(env_id, judge_kwargs):
    env = gymnasium.make(env_id, **judge_kwargs)
    try:
        check_env(env.unwrapped)
    finally:
        env.close()


def test_an_episode_with_real_models_and_invalid_actions(judge_kwargs):
    env = gymnasium.make("progressgym/Follow-v0", **judge_kwargs, query_budget=4)
    obs, info = env.reset(seed=0)
    assert info["n_steps"] == 2 and Path(info["initial_model"], "config.json").is_file()
    assert {k: int(v) for k, v in obs.items()} == {"timestep": 1, "century": 14, "budget_left": 4}

    judge = env.unwrapped.judge_interface
    p = judge.compare([("Is honesty good?", "Yes.", "No.")])
    assert 0.0 <= p[0] <= 1.0 and judge.budget_left == 3
    target = judge.reveal_target()  # privileged, for the test: the model scored against
    obs, reward, terminated, truncated, info = env.step(target.path)
    assert reward == pytest.approx(1.0) and not terminated and not truncated
    assert info["invalid_action"] is False and info["cosine"] == pytest.approx(1.0)
    assert isinstance(info["examinee_vector"], np.ndarray) and info["examinee_vector"].shape == (19,)
    assert np.array_equal(info["examinee_vector"], info["target_vector"])
    assert int(obs["timestep"]) == 2 and int(obs["century"]) == 15

    obs, reward, terminated, truncated, info = env.step("no such model")
    assert reward == 0.0 and terminated and info["invalid_action"] is True and "examinee_vector" not in info
    assert info["score"] == pytest.approx(0.5)  # one perfect step, one forfeited step
    assert int(obs["timestep"]) == 3 and int(obs["budget_left"]) == 0
    with pytest.raises(RuntimeError, match="episode is over"):
        env.unwrapped.judge_interface  # noqa: B018
    env.close()


def test_seedless_reset_is_reproducible_through_the_env_rng(judge_kwargs):
    env = gymnasium.make("progressgym/Predict-v0", **judge_kwargs).unwrapped
    env.reset(seed=11)
    first = env.judge.seed
    env.reset(seed=11)
    assert env.judge.seed == first == 11
    env.reset()
    assert env.judge.seed != 11
    env.close()


def _unloadable(folder: Path, case: str) -> str:
    folder.mkdir()
    if case == "garbage config":
        (folder / "config.json").write_bytes(b"\x89garbage{{")
        return str(folder)
    (folder / "config.json").write_text('{"model_type": "llama", "hidden_size": 64}')
    if case == "config only":
        return str(folder)
    (folder / "tokenizer.json").write_text("{}")
    header = b'{"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}'
    if case == "truncated weights":
        (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 10)
    elif case == "unknown model type":
        (folder / "config.json").write_text('{"model_type": "nonsense"}')
        (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4000)
    return str(folder)


@pytest.mark.parametrize(
    "case", ["config only", "garbage config", "no weights", "truncated weights", "unknown model type"]
)
def test_an_action_that_cannot_be_loaded_is_invalid(case, judge_kwargs, tmp_path):
    env = gymnasium.make("progressgym/Follow-v0", **judge_kwargs).unwrapped
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(_unloadable(tmp_path / "model", case))
    assert reward == 0.0 and info["invalid_action"] is True and "examinee_vector" not in info
    assert int(obs["timestep"]) == 2 and not terminated
    env.close()


def test_a_closed_env_refuses_to_step(judge_kwargs):
    env = gymnasium.make("progressgym/Follow-v0", **judge_kwargs).unwrapped
    _, info = env.reset(seed=0)
    env.close()
    env.close()  # closing twice is allowed
    for call in (lambda: env.step(info["initial_model"]), lambda: env.reset(seed=0)):
        with pytest.raises(RuntimeError, match="the environment is closed"):
            call()
    with pytest.raises(RuntimeError, match="the environment is closed"):
        env.judge_interface  # noqa: B018
