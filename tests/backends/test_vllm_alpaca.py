"""vLLM (CPU) and transformers agree on a HistLlama3 twin prompted in the Alpaca format."""

import pytest

from progressgym.backends import BackendOptions, GenerateRequest, Message, ScoreRequest, user
from progressgym.prompt_format import prompt_format_settings

SYSTEM = Message("system", "Answer the moral question.")
SCORE = [
    ScoreRequest(user("Is it right to lie to protect a friend?"), ("Yes", "No")),
    ScoreRequest((SYSTEM, Message("user", "Should a ruler listen to the people?")), ("A", "B", "C")),
    ScoreRequest(user("Why?"), ("Because it is kind.", "It depends on the harm.")),
]
GENERATE = [
    GenerateRequest(user(f"Question {i}: may a promise be broken?" + " Why?" * i), 12) for i in range(6)
]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    import torch

    if torch.cuda.is_available():
        pytest.skip("the CUDA build of vllm cannot run on CPU")
    from progressgym.backends.hf import HFBackend
    from progressgym.backends.vllm import VLLMBackend
    from progressgym.twin import build_twin_model

    model = build_twin_model(tmp_path_factory.mktemp("twin") / "8B-C013-instruct")
    options = BackendOptions(device="cpu", seed=0, max_model_len=1024)
    with prompt_format_settings("auto", "alpaca"):
        vllm_backend = VLLMBackend(str(model), options)
        hf_backend = HFBackend(str(model), options)
    yield vllm_backend, hf_backend
    vllm_backend.close()
    hf_backend.close()


@pytest.mark.vllm
@pytest.mark.slow
def test_alpaca_scores_and_greedy_replies_match_hf(engines):
    vllm_backend, hf_backend = engines
    assert vllm_backend.prompt_format == hf_backend.prompt_format == "alpaca"
    ours, theirs = vllm_backend.score(SCORE), hf_backend.score(SCORE)
    diff = max(abs(a - b) for x, y in zip(ours, theirs, strict=True) for a, b in zip(x, y, strict=True))
    assert diff < 1e-3
    assert vllm_backend.generate(GENERATE) == hf_backend.generate(GENERATE)
