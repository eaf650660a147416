import pytest
import torch
from transformers import AutoTokenizer

from progressgym.backends import (
    BackendOptions,
    GenerateRequest,
    Message,
    ScoreRequest,
    _chat,
    backend_class,
    make_backend,
    user,
)
from progressgym.backends.hf import HFBackend, batch_bounds, resolve_device, resolve_dtype
from progressgym.error import InvalidInput, UnknownName

SYSTEM = Message("system", "You are a careful assistant who answers moral questions.")

# Mixed prompt lengths, a shared system prompt, a repeated prompt, one- and many-token candidates.
REQUESTS = [
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
    ScoreRequest(user("Is it right to lie to protect a friend?"), ("Maybe so", "Never.")),
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


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    backend = HFBackend(str(tiny_model_dir), BackendOptions(device="cpu", batch_size=3))
    yield backend
    backend.close()


def _max_diff(a, b):
    return max(
        abs(x - y) for row_a, row_b in zip(a, b, strict=True) for x, y in zip(row_a, row_b, strict=True)
    )


@pytest.fixture(scope="module")
def naive_scores(hf):
    return hf.loglikelihood_naive(REQUESTS)


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_score_equals_naive(tiny_model_dir, naive_scores, batch_size):
    backend = HFBackend(str(tiny_model_dir), BackendOptions(device="cpu", batch_size=batch_size))
    ours = backend.score(REQUESTS)
    assert [len(r) for r in ours] == [len(r.candidates) for r in REQUESTS]
    assert _max_diff(ours, naive_scores) < 1e-4
    assert all(score < 0 for row in ours for score in row)


def test_single_token_candidates_read_from_the_prompt_pass(hf):
    requests = [
        ScoreRequest(user(f"Question {i}: pick one." + " Please." * i), ("A", "B", "C", "D"))
        for i in range(5)
    ]
    for candidate in "ABCD":
        assert len(_chat.encode_for_scoring(hf.tokenizer, requests[0].prompt, candidate).candidate) == 1
    before = hf.usage.snapshot()
    ours = hf.score(requests)
    spent = hf.usage - before
    assert _max_diff(ours, hf.loglikelihood_naive(requests)) < 1e-4
    contexts = [_chat.encode_prompt(hf.tokenizer, r.prompt) for r in requests]
    # No candidate token is fed: every prompt token at most once.
    assert spent.forward_tokens <= sum(len(c) for c in contexts)


def test_empty_candidate_scores_zero(hf):
    assert hf.score([ScoreRequest(user("Hello"), ("", "Hi"))])[0][0] == 0.0


def test_forward_tokens_are_exact(hf):
    tok = hf.tokenizer
    prompt_a = user("Is it right to lie to protect a friend?")
    prompt_b = user("Is it right to lie to protect a stranger?")
    candidates = ("Yes", "No, never.", "It depends on the harm that would follow.")
    context_a, cand_ids = _chat.encode_candidates(tok, prompt_a, candidates)
    context_b, _ = _chat.encode_candidates(tok, prompt_b, candidates)
    fed_candidates = sum(len(ids) - 1 for ids in cand_ids)  # the last token of a candidate is never fed

    hf.usage.reset()
    hf.score([ScoreRequest(prompt_a, candidates)])
    assert hf.usage.forward_tokens == len(context_a) + fed_candidates

    # Two prompts in one batch: their common prefix runs once; a repeated prompt costs nothing more.
    shared = next(i for i, (a, b) in enumerate(zip(context_a, context_b, strict=False)) if a != b)
    assert 0 < shared < min(len(context_a), len(context_b))
    hf.usage.reset()
    requests = [
        ScoreRequest(prompt_a, candidates),
        ScoreRequest(prompt_b, candidates),
        ScoreRequest(prompt_a, candidates),
    ]
    ours = hf.score(requests)
    expected = len(context_a) + len(context_b) - shared + 3 * fed_candidates
    assert hf.usage.forward_tokens == expected
    assert hf.usage.prompts == 3

    hf.usage.reset()
    naive = hf.loglikelihood_naive(requests)
    naive_tokens = sum(len(c) + len(ids) for c in (context_a, context_b, context_a) for ids in cand_ids)
    assert hf.usage.forward_tokens == naive_tokens > expected
    assert _max_diff(ours, naive) < 1e-4


def test_batch_bounds_cut_where_prompts_share_least():
    contexts = [(1, 2, 3, 4), (1, 2, 3, 5), (1, 2, 3, 6), (1, 9, 9), (1, 9, 8), (7,)]
    assert batch_bounds(contexts, 4) == [(0, 3), (3, 6)]
    assert batch_bounds(contexts, 2) == [(0, 2), (2, 3), (3, 5), (5, 6)]  # (2, 4) would split a pair
    assert batch_bounds(contexts, 1) == [(i, i + 1) for i in range(6)]
    assert batch_bounds(contexts, 100) == [(0, 6)]
    assert batch_bounds([], 4) == []


GENERATE = [
    GenerateRequest(user("Hello"), max_new_tokens=12),
    GenerateRequest(
        user("Is it right to lie to protect a friend? Answer in one sentence."), max_new_tokens=20
    ),
    GenerateRequest((SYSTEM, Message("user", "Why do seasons change?")), max_new_tokens=5),
]


def test_greedy_generation_is_deterministic_and_batch_independent(hf):
    first = hf.generate(GENERATE)
    assert first == hf.generate(GENERATE)
    assert first == [hf.generate([r])[0] for r in GENERATE]
    assert all(isinstance(text, str) and text for text in first)
    assert "<|end|>" not in "".join(first)


def test_generation_usage_counts_prompt_and_generated_tokens(hf):
    hf.usage.reset()
    hf.generate(GENERATE)
    prompt_tokens = sum(len(_chat.encode_prompt(hf.tokenizer, r.prompt)) for r in GENERATE)
    usage = hf.usage
    assert usage.prompts == len(GENERATE)
    assert 0 < usage.generated_tokens <= sum(r.max_new_tokens for r in GENERATE)
    assert usage.forward_tokens == prompt_tokens + usage.generated_tokens
    assert usage.seconds > 0
    assert set(usage.as_dict()) == {"prompts", "forward_tokens", "generated_tokens", "seconds"}


def test_generation_stops_at_a_stop_token(tiny_model_dir):
    backend = HFBackend(str(tiny_model_dir), BackendOptions(device="cpu"))
    request = GenerateRequest(user("Hello"), max_new_tokens=12)
    full = backend.generate([request])[0]
    backend.usage.reset()
    # Pretend the third greedy token is the end of turn: generation must stop right after it.
    prompt = _chat.encode_prompt(backend.tokenizer, request.prompt)
    generated: list[int] = []
    with torch.inference_mode():
        for _ in range(3):
            logits = backend.model(input_ids=torch.tensor([prompt + generated])).logits
            generated.append(int(logits[0, -1].argmax()))
    backend._stop_ids = [generated[2]]
    stopped = backend.generate([request])[0]
    assert backend.usage.generated_tokens == 3
    assert stopped == backend.tokenizer.decode(generated[:2], skip_special_tokens=True)
    assert full.startswith(stopped)


def test_sampling_is_seeded(tiny_model_dir):
    def run(seed_option, requests):
        return HFBackend(str(tiny_model_dir), BackendOptions(device="cpu", seed=seed_option)).generate(
            requests
        )

    seeded = [GenerateRequest(user("Hello"), max_new_tokens=16, temperature=1.0, seed=s) for s in (1, 1, 2)]
    a = run(0, seeded)
    assert a == run(5, seeded)  # per-request seeds decide
    assert a[0] == a[1] != a[2]
    unseeded = [GenerateRequest(user("Hello"), max_new_tokens=16, temperature=1.0, top_p=0.9)] * 3
    b = run(0, unseeded)
    assert b == run(0, unseeded)  # the backend seed makes a run reproducible...
    assert len(set(b)) > 1  # ...while identical requests still get different samples


def test_zero_new_tokens_gives_empty_reply(hf):
    assert hf.generate([GenerateRequest(user("Hello"), max_new_tokens=0)]) == [""]


def test_empty_batches_and_missing_candidates(hf):
    assert hf.score([]) == [] and hf.generate([]) == []
    with pytest.raises(ValueError, match="at least one candidate"):
        hf.score([ScoreRequest(user("Hello"), ())])


def test_registry_makes_hf_and_suggests_names(tiny_model_dir):
    assert backend_class("hf") is HFBackend
    with make_backend("hf", str(tiny_model_dir), BackendOptions(device="cpu")) as backend:
        assert backend.name == "hf" and backend.dtype.is_floating_point
    backend.close()  # twice is fine
    with pytest.raises(UnknownName, match="Did you mean 'hf'"):
        make_backend("hff", str(tiny_model_dir))


def test_device_and_dtype_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert str(resolve_dtype("auto", resolve_device("cpu"))) == "torch.float32"
    assert str(resolve_dtype("bfloat16", resolve_device("cpu"))) == "torch.bfloat16"
    with pytest.raises(InvalidInput, match="unknown dtype"):
        resolve_dtype("float8", resolve_device("cpu"))


# ---------------------------------------------------------------- _chat: conversations to token ids


def test_chat_template_prompt_and_scoring_ids(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = (SYSTEM, Message("user", "Hi"))
    text = _chat.render_prompt(tok, prompt)
    assert text.startswith("<s><|system|>\n") and text.endswith("<|user|>\nHi<|end|>\n<|assistant|>\n")
    context, candidate = _chat.encode_for_scoring(tok, prompt, "Hello there")
    assert context == _chat.encode_prompt(tok, prompt) == tok.encode(text, add_special_tokens=False)
    assert context.count(tok.bos_token_id) == 1
    assert candidate == tok.encode("Hello there", add_special_tokens=False)
    # Appending the candidate's own ids gives the joint encoding: no merge crosses the template's newline.
    assert context + candidate == tok.encode(text + "Hello there", add_special_tokens=False)


def test_plain_fallback_without_chat_template(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = None
    prompt = (SYSTEM, Message("user", "Hi"), Message("assistant", "Hello."), Message("user", "Why?"))
    assert (
        _chat.render_prompt(tok, prompt)
        == f"System: {SYSTEM.content}\n\nUser: Hi\nAssistant: Hello.\nUser: Why?\nAssistant:"
    )
    context, candidate = _chat.encode_for_scoring(tok, user("Hi"), "Yes")
    assert candidate == tok.encode(" Yes", add_special_tokens=False)  # the reply's leading space
    assert _chat.decode_reply(tok, tok.encode(" Yes.", add_special_tokens=False)) == "Yes."


def test_decode_reply_stops_at_stop_tokens(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok.encode("Yes.", add_special_tokens=False)
    stop = _chat.stop_token_ids(tok, [tok.eos_token_id, 7])
    assert stop == [tok.eos_token_id, 7]
    assert _chat.decode_reply(tok, [*ids, tok.eos_token_id, *ids], stop) == "Yes."
    assert _chat.stop_token_ids(tok, None) == [tok.eos_token_id]
