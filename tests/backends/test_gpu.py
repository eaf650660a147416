"""vLLM on CUDA against the transformers backend on the tiny model (run with ``pytest -m gpu`` on a GPU machine).

In float32 the two agree as closely as on CPU. In bfloat16 (the default on CUDA) each token's log-probability
carries about 1% of rounding, so scores are compared with a tolerance that grows with the candidate's length,
and greedy replies only need to agree on most prompts (a rounding step can flip one near-tied choice).
"""

import pytest

from progressgym.backends import BackendOptions, GenerateRequest, Message, ScoreRequest, _chat, user

pytestmark = [pytest.mark.gpu, pytest.mark.vllm]

SYSTEM = Message("system", "You are a careful assistant who answers moral questions.")
SCORE = [
    ScoreRequest(user("Is it right to lie to protect a friend?"), ("Yes", "No")),
    ScoreRequest((SYSTEM, Message("user", "Should a ruler listen to the people?")), ("A", "B", "C", "D")),
    ScoreRequest(
        (SYSTEM, Message("user", "Should a ruler listen to the people? Think of the harvest.")),
        (
            "Yes, because trust is the ground of every friendship.",
            "It depends on the harm that would follow.",
        ),
    ),
    ScoreRequest(user("Why?"), ("Because.", "No reason at all, really, none", "x")),
]
GENERATE = [
    GenerateRequest(
        user(f"Question {i}: is it right to break a promise to help a stranger?" + " Why?" * i),
        max_new_tokens=16,
    )
    for i in range(12)
]


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def engines(request, tiny_model_dir):
    from progressgym.backends.hf import HFBackend
    from progressgym.backends.vllm import VLLMBackend

    options = BackendOptions(device="cuda", dtype=request.param, gpu_memory_utilization=0.3, seed=0)
    vllm_backend = VLLMBackend(str(tiny_model_dir), options)
    hf_backend = HFBackend(str(tiny_model_dir), options)
    yield request.param, vllm_backend, hf_backend
    vllm_backend.close()
    hf_backend.close()


def test_scores_match_hf_on_cuda(engines):
    dtype, vllm_backend, hf_backend = engines
    ours, theirs = vllm_backend.score(SCORE), hf_backend.score(SCORE)
    for request, row_a, row_b in zip(SCORE, ours, theirs, strict=True):
        for candidate, a, b in zip(request.candidates, row_a, row_b, strict=True):
            n = len(_chat.encode_for_scoring(hf_backend.tokenizer, request.prompt, candidate).candidate)
            tolerance = 1e-3 if dtype == "float32" else 0.1 + 0.02 * abs(b) + 0.05 * n
            assert abs(a - b) <= tolerance, (candidate, a, b)


def test_greedy_generations_match_hf_on_cuda(engines):
    dtype, vllm_backend, hf_backend = engines
    ours, theirs = vllm_backend.generate(GENERATE), hf_backend.generate(GENERATE)
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    assert same == len(GENERATE) if dtype == "float32" else same >= len(GENERATE) // 2
