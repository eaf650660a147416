import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from scripted_models import ScriptedBackend, keeps_rules, scripted_model_dir, utility_table
from toy_bank import toy_bank

from progressgym.backends import BACKENDS
from progressgym.evaluation import cache
from progressgym.evaluation.banks import load_bank
from progressgym.evaluation.evaluator import Evaluation, evaluate

TOY = toy_bank()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("PROGRESSGYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(BACKENDS, "scripted", "scripted_models:ScriptedBackend")
    ScriptedBackend.created = 0
    original = ScriptedBackend.__init__

    def counting(self, *args, **kwargs):
        type(self).created += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(ScriptedBackend, "__init__", counting)


@pytest.fixture
def keeper(tmp_path):
    table = utility_table(TOY, keeps_rules)
    return scripted_model_dir(tmp_path / "keeper", {"table": [[c, o, u] for (c, o), u in table.items()]})


def _run(model, **kwargs):
    settings = {"bank": TOY, "backend": "scripted", "progress": False, **kwargs}
    return evaluate(str(model), **settings)


def test_second_call_is_served_from_the_cache(keeper):
    first = _run(keeper)
    second = _run(keeper)
    assert (first.cached, second.cached) == (False, True)
    assert ScriptedBackend.created == 1  # the model was not even loaded the second time
    np.testing.assert_array_equal(first.vector, second.vector)
    assert first.cache_key == second.cache_key and cache.entry_path(first.cache_key).is_file()
    assert second.usage == first.usage and first.usage["prompts"] == 150
    assert first.fingerprint and first.model == "keeper"


def test_no_cache_neither_reads_nor_writes(keeper):
    result = _run(keeper, use_cache=False)
    assert not result.cached and not cache.entry_path(result.cache_key).exists()
    assert _run(keeper, use_cache=False).cached is False
    assert ScriptedBackend.created == 2


@pytest.mark.parametrize(
    "damage", ["{not json", "", '{"version": 1, "key": "other", "evaluation": {}}', "[1, 2]", "vector"]
)
def test_a_corrupt_entry_is_recomputed_with_a_warning(keeper, damage):
    first = _run(keeper)
    path = cache.entry_path(first.cache_key)
    if damage == "vector":  # a well-formed file whose evaluation is not a 19-dim vector
        entry = json.loads(path.read_text())
        entry["evaluation"]["vector"] = [0.0, 1.0]
        path.write_text(json.dumps(entry))
    else:
        path.write_text(damage)
    with pytest.warns(cache.CacheWarning, match="corrupt cached vector"):
        again = _run(keeper)
    assert again.cached is False and ScriptedBackend.created == 2
    np.testing.assert_array_equal(again.vector, first.vector)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _run(keeper).cached is True  # the recomputed entry replaced the broken one


def test_every_setting_that_can_change_the_vector_changes_the_key(keeper, tmp_path):
    base = _run(keeper)
    other_model = scripted_model_dir(tmp_path / "other", {"position": 0})
    variants = [
        _run(other_model),
        _run(keeper, bank=dataclasses.replace(TOY, split="evaluation")),
        _run(keeper, bank=load_bank("core", split="evaluation")),
        _run(keeper, bank=load_bank("core", split="elicitation")),
        _run(keeper, mode="generate"),
        _run(keeper, mode="generate", max_new_tokens=5),
        _run(keeper, formats=["label"]),
        _run(keeper, orders="all"),
    ]
    keys = [base.cache_key, *(v.cache_key for v in variants)]
    assert len(set(keys)) == len(keys)
    assert not any(v.cached for v in variants)


def test_key_covers_versions_and_bank_key():
    material = cache.key_material(
        fingerprint="f", bank_key="core@1/evaluation@s1", mode="logprob", formats=["label"], orders="cyclic"
    )
    assert material["vector"] == "v1" and material["prompts"] and material["bank"].endswith("evaluation@s1")
    assert cache.cache_key(material) == cache.cache_key(dict(reversed(list(material.items()))))
    assert cache.cache_key(material) != cache.cache_key({**material, "bank": "core@1/elicitation@s1"})
    assert cache.cache_key(material) != cache.cache_key({**material, "vector": "v2"})


def test_evaluation_round_trips_through_json_bit_for_bit(keeper):
    result = _run(keeper)
    again = Evaluation.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.vector.tobytes() == result.vector.tobytes()
    assert again.to_dict() == result.to_dict()
    assert not again.vector.flags.writeable


def test_two_processes_writing_one_entry_never_expose_a_partial_file(tmp_path):
    key = "k" * 24
    writer = textwrap.dedent(
        f"""
        from progressgym.evaluation import cache
        payload = {{"vector": [0.5] * 19, "pad": "x" * 200_000}}
        for i in range(150):
            cache.store_entry({key!r}, {{"i": i}}, payload)
        """
    )
    payload = {"vector": [0.5] * 19, "pad": "x" * 200_000}
    env = {**os.environ, "PROGRESSGYM_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", writer], env=env) for _ in range(2)]
    seen = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn read would warn
        while any(p.poll() is None for p in procs):
            entry = cache.load_entry(key)
            if entry is not None:
                assert entry == payload
                seen += 1
    assert all(p.returncode == 0 for p in procs)
    assert cache.load_entry(key) == payload and seen > 0
    assert [p.name for p in cache.vectors_dir().iterdir()] == [f"{key}.json"]  # no temp files left behind


@pytest.mark.slow
def test_same_tiny_model_gives_the_same_vector_bit_for_bit(tmp_path):
    import torch

    from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

    def run(model, **kwargs):
        return evaluate(
            str(model), bank=TOY, backend="hf", backend_options={"device": "cpu"}, progress=False, **kwargs
        )

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model gains nothing from more threads on shared cores
    try:
        model = build_tiny_model(tmp_path / "tiny", corpus=DEFAULT_TINY_CORPUS, seed=3)
        runs = [run(model, use_cache=False) for _ in range(2)]
        rebuilt = build_tiny_model(tmp_path / "tiny-again", corpus=DEFAULT_TINY_CORPUS, seed=3)
        third = run(rebuilt)
    finally:
        torch.set_num_threads(threads)
    assert runs[0].vector.tobytes() == runs[1].vector.tobytes()
    assert third.vector.tobytes() == runs[0].vector.tobytes() and third.fingerprint == runs[0].fingerprint
    assert np.any(runs[0].vector != 0)  # a random model is not exactly indifferent: the test can fail


def _edit_entry(path, change, *, fix_checksum):
    entry = json.loads(path.read_text())
    change(entry["evaluation"])
    if fix_checksum:  # as if the file had been written so, checksum and all
        entry["checksum"] = cache.checksum(entry["evaluation"])
    path.write_text(json.dumps(entry))


def _set(index, value):
    def change(evaluation):
        evaluation["vector"][index] = value

    return change


@pytest.mark.parametrize(
    ("change", "fix_checksum", "reason"),
    [
        (_set(3, 0.281), False, "does not match its checksum"),
        (_set(3, float("nan")), False, "does not match its checksum"),
        (_set(3, float("nan")), True, "not a finite number"),
        (_set(0, float("inf")), True, "not a finite number"),
        (_set(0, "0.5"), True, "not a finite number"),
        (lambda e: e["vector"].pop(), True, "is not 19 numbers"),
        (lambda e: e.update(invalid_rate=0.5), False, "does not match its checksum"),
    ],
    ids=["changed-number", "nan", "nan-checksummed", "inf-checksummed", "text", "18-numbers", "other-field"],
)
def test_an_edited_or_non_finite_entry_is_reported_and_recomputed(keeper, change, fix_checksum, reason):
    first = _run(keeper)
    path = cache.entry_path(first.cache_key)
    assert json.loads(path.read_text())["checksum"] == cache.checksum(first.to_dict() | {"cached": False})
    _edit_entry(path, change, fix_checksum=fix_checksum)
    with pytest.warns(cache.CacheWarning, match=reason):
        again = _run(keeper)
    assert again.cached is False and ScriptedBackend.created == 2
    assert again.vector.tobytes() == first.vector.tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _run(keeper).cached is True  # the recomputed entry replaced the bad one


def test_an_entry_without_a_checksum_is_recomputed(keeper):
    first = _run(keeper)
    path = cache.entry_path(first.cache_key)
    entry = json.loads(path.read_text())
    del entry["checksum"]
    path.write_text(json.dumps(entry))
    with pytest.warns(cache.CacheWarning, match="checksum"):
        assert _run(keeper).cached is False
