import sys
import textwrap

import pytest

import progressgym
from progressgym import registration
from progressgym.algorithms import ALGORITHMS as BUILTIN_ALGORITHMS
from progressgym.algorithms import DEFAULT_ALGORITHM
from progressgym.algorithms.reference import OracleExaminee, StaticExaminee
from progressgym.core import Examinee, Judge
from progressgym.error import InvalidInput, UnknownName
from progressgym.registration import (
    algorithm_class,
    challenge_spec,
    list_algorithms,
    list_challenges,
    make_examinee,
    make_judge,
    register_algorithm,
    register_challenge,
)


def test_import_registers_challenges_without_loading_heavy_libraries():
    code = (
        "import sys, progressgym, gymnasium; "
        "assert not {'torch', 'transformers', 'vllm', 'trl'} & set(sys.modules), sorted(sys.modules); "
        "assert 'progressgym/Coevolve-v1' in gymnasium.registry; print('ok')"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert progressgym.registration is registration


def test_challenges_are_found_by_id_or_name_with_suggestions():
    assert [s.id for s in list_challenges()][:3] == ["Follow-v0", "Predict-v0", "Coevolve-v1"]
    assert challenge_spec("FOLLOW").id == "Follow-v0" and challenge_spec("predict-v0").version == 0
    with pytest.raises(UnknownName, match=r"unknown challenge 'coevolv'\. Did you mean 'coevolve'\?"):
        challenge_spec("coevolv")
    with pytest.raises(InvalidInput, match="must look like Name-vN"):
        register_challenge("NoVersion", "x:y")


def test_algorithms_are_lazy_checked_and_suggested():
    assert DEFAULT_ALGORITHM == "lifelong-dpo" and set(BUILTIN_ALGORITHMS) <= set(list_algorithms())
    assert algorithm_class("static") is StaticExaminee and StaticExaminee.name == "static"
    assert algorithm_class("oracle") is OracleExaminee and OracleExaminee.privileged
    assert "PRIVILEGED" in OracleExaminee.__doc__ and "cheating upper bound" in OracleExaminee.__doc__
    with pytest.raises(UnknownName, match="Did you mean 'static'"):
        algorithm_class("statc")
    with pytest.raises(TypeError, match="not a subclass of progressgym.Examinee"):
        register_algorithm("not-an-examinee")(dict)
    with pytest.raises(ValueError, match="already registered"):

        @register_algorithm("static")
        class Other(StaticExaminee):
            pass

    with pytest.raises(InvalidInput, match="takes no configuration"):
        make_examinee("static", {"lr": 1})


def test_a_new_challenge_and_algorithm_plug_in():
    class Backwards(Judge):
        def target_timestep(self, step):
            return 0

    @register_algorithm("test-noop")
    class Noop(Examinee):
        def update(self, judge, step):
            return self.current_model

    spec = register_challenge("TestBackwards-v3", Backwards, kwargs={"timeline": "mini"}, gym=False)
    try:
        judge = make_judge("testbackwards")
        assert judge.id == "TestBackwards-v3" and spec.version == 3 and judge.target_timestep(5) == 0
        assert isinstance(make_examinee("test-noop"), Noop)
    finally:
        registration.CHALLENGES._entries.pop("TestBackwards-v3")
        registration.ALGORITHMS._entries.pop("test-noop", None)


def test_entry_points_are_loaded_on_a_lookup_miss(tmp_path, monkeypatch):
    (tmp_path / "pgplugin.py").write_text(
        textwrap.dedent(
            """
            from progressgym.core import Examinee
            from progressgym.judges.follow import FollowJudge
            from progressgym.registration import register_challenge

            class PluginExaminee(Examinee):
                '''A plugin algorithm.'''
                def update(self, judge, step):
                    return self.current_model

            register_challenge("PluginFollow-v1", FollowJudge, gym=False)
            """
        )
    )
    info = tmp_path / "pgplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pgplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[progressgym.algorithms]\nplugin-algo = pgplugin:PluginExaminee\n\n"
        "[progressgym.challenges]\nplugin = pgplugin\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registration.ALGORITHMS, "_loaded", False)
    monkeypatch.setattr(registration.CHALLENGES, "_loaded", False)
    try:
        cls = algorithm_class("plugin-algo")
        assert cls.__name__ == "PluginExaminee" and cls.name == "plugin-algo"
        assert challenge_spec("pluginfollow").id == "PluginFollow-v1"
    finally:
        registration.ALGORITHMS._entries.pop("plugin-algo", None)
        registration.CHALLENGES._entries.pop("PluginFollow-v1", None)
        sys.modules.pop("pgplugin", None)
