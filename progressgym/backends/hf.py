"""The transformers backend: any causal LM that ``AutoModelForCausalLM`` loads, on CPU or one CUDA device.

Scoring shares work wherever the numbers allow it:

1. Requests with the same prompt are merged, and prompts are sorted by token ids so that neighbours share
   prefixes (a system prompt, an instruction, the chat template's opening).
2. Per batch of prompts, their common prefix runs once; its keys and values are kept and reused, or cut
   short, for the next batch (keys and values at a position depend only on the tokens before it).
3. The rest of each prompt runs once for all of its candidates, batched with right padding. The last
   position's logits score every candidate's first token, so one-token candidates cost nothing more.
4. Longer candidates continue from the prompt's cached keys and values (copied to one row per candidate)
   and feed all but their last token.

``Usage.forward_tokens`` counts exactly the tokens fed to the model, never padding.
:meth:`HFBackend.loglikelihood_naive` is the unshared baseline (one forward per prompt and candidate).
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from progressgym.backends import _chat
from progressgym.backends.base import Backend, BackendOptions, GenerateRequest, ScoreRequest
from progressgym.error import InvalidInput
from progressgym.prompt_format import apply_prompt_format

KV = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, the cached keys and values, each ``[batch, kv_heads, positions, head_dim]``."""

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def resolve_device(device: str) -> torch.device:
    """``"auto"`` becomes CUDA when available, else CPU; other names are passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``"auto"`` becomes bfloat16 on CUDA and float32 elsewhere."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise InvalidInput(f"unknown dtype {dtype!r}; use 'auto' or one of {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id sequences."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of ``targets`` (``[...]``) under ``logits`` (``[..., vocab]``), in float64.

    Float64 keeps the normalisation and the sums over long candidates from adding rounding of their own.
    """
    logits = logits.double()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


@dataclass
class _Context:
    """One distinct prompt of a scoring call and the candidates that follow it."""

    ids: tuple[int, ...]
    targets: list[tuple[int, int, list[int]]] = field(default_factory=list)
    """``(request index, candidate index, candidate ids)`` for each candidate."""


@dataclass
class _Rows:
    """Cached keys and values of a batch of token sequences that may hold padding anywhere.

    Attributes:
        kv: Per layer, keys and values ``[rows, kv_heads, width, head_dim]``.
        mask: ``[rows, width]``, 1 where a real token sits, 0 for padding.
        lengths: ``[rows]``, real tokens per row: the position id of the row's next token.
    """

    kv: KV
    mask: torch.Tensor
    lengths: torch.Tensor

    def select(self, index: torch.Tensor) -> _Rows:
        """The rows at ``index`` (repeats allowed), copied."""
        return _Rows(
            [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.kv],
            self.mask.index_select(0, index),
            self.lengths.index_select(0, index),
        )

    def head(self, n: int) -> _Rows:
        """The first ``n`` positions (meaningful when no row has padding before ``n``)."""
        return _Rows(
            [(k[:, :, :n], v[:, :, :n]) for k, v in self.kv], self.mask[:, :n], self.lengths.clamp(max=n)
        )


def batch_bounds(contexts: Sequence[Sequence[int]], size: int) -> list[tuple[int, int]]:
    """Split sorted ``contexts`` into batches of at most ``size``, cutting where neighbours share least.

    A batch ends somewhere in the second half of its window, before the context that shares the shortest
    prefix with its predecessor (the latest such place on ties), so prompts that share a long prefix tend to
    land in the same batch.

    Returns:
        ``(start, end)`` index pairs covering ``contexts`` in order.
    """
    n = len(contexts)
    shared = [_lcp(a, b) for a, b in zip(contexts, contexts[1:], strict=False)]
    bounds = []
    start = 0
    while start < n:
        end = min(start + size, n)
        if end < n:
            cuts = range(start + max(1, size // 2), end + 1)
            end = min(cuts, key=lambda j: (shared[j - 1], -j))
        bounds.append((start, end))
        start = end
    return bounds


class HFBackend(Backend):
    """Batched generation and shared-prefix scoring with a transformers model.

    The model is loaded with ``AutoModelForCausalLM`` in eval mode, on ``options.device`` (``auto``: CUDA
    when available) in ``options.dtype`` (``auto``: bfloat16 on CUDA, float32 on CPU). ``options.batch_size``
    prompts share a forward pass; continuations of multi-token candidates run up to four times as many rows.

    Sampling uses one ``torch.Generator`` per request, seeded with ``request.seed``, or else with a seed
    drawn from a stream started at ``options.seed``: a run is reproducible, and identical prompts in one
    call still get different samples.
    """

    name = "hf"

    def __init__(self, model_path: str, options: BackendOptions | None = None) -> None:
        super().__init__(model_path, options)
        self.device = resolve_device(self.options.device)
        self.dtype = resolve_dtype(self.options.dtype, self.device)
        torch.manual_seed(self.options.seed)
        self._seed_stream = random.Random(self.options.seed)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.prompt_format = apply_prompt_format(self.tokenizer)
        model: Any = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype)
        self.model = model.to(self.device).eval()
        self._pad_id = next(
            (t for t in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id) if t is not None), 0
        )
        self._stop_ids = _chat.stop_token_ids(self.tokenizer, self.model.generation_config.eos_token_id)
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self._prefix_ids: tuple[int, ...] = ()
        self._prefix_rows: _Rows | None = None

    # ------------------------------------------------------------------ scoring

    @torch.inference_mode()
    def _score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        results = [[0.0] * len(r.candidates) for r in requests]
        contexts: dict[tuple[int, ...], _Context] = {}
        for i, request in enumerate(requests):
            context_ids, candidate_ids = _chat.encode_candidates(
                self.tokenizer, request.prompt, request.candidates
            )
            if not context_ids:
                raise InvalidInput("cannot score after an empty prompt: it encodes to no tokens")
            context = contexts.setdefault(tuple(context_ids), _Context(tuple(context_ids)))
            for j, ids in enumerate(candidate_ids):
                if ids:  # an empty candidate has log-likelihood 0
                    context.targets.append((i, j, ids))
        ordered = [contexts[key] for key in sorted(contexts) if contexts[key].targets]
        try:
            for start, end in batch_bounds([c.ids for c in ordered], max(1, self.options.batch_size)):
                self._score_batch(ordered[start:end], results)
        finally:
            self._prefix_ids, self._prefix_rows = (), None
        return results

    def _score_batch(self, batch: list[_Context], results: list[list[float]]) -> None:
        """Score one batch of distinct prompts: shared prefix, group prefixes, prompt ends, then candidates."""
        dev = self.device
        # Every prompt keeps at least one token past any shared prefix: its last position scores first tokens.
        base = min(_lcp(batch[0].ids, batch[-1].ids), min(len(c.ids) for c in batch) - 1)
        rows = self._prefix(batch[0].ids[:base])

        # Groups: runs of prompts that share more than the batch as a whole (e.g. one scenario's prompts).
        links = [_lcp(a.ids, b.ids) for a, b in zip(batch, batch[1:], strict=False)]
        weakest = min(links, default=0)
        groups: list[list[int]] = [[0]]
        for i, link in enumerate(links, start=1):
            if link > weakest:
                groups[-1].append(i)
            else:
                groups.append([i])
        group_ends = [
            min(_lcp(batch[g[0]].ids, batch[g[-1]].ids), min(len(batch[i].ids) for i in g) - 1)
            if len(g) > 1
            else base
            for g in groups
        ]
        parent = [0] * len(batch)
        starts = [base] * len(batch)
        if any(end > base for end in group_ends):
            pieces = [batch[g[0]].ids[base:end] for g, end in zip(groups, group_ends, strict=True)]
            rows, _ = self._extend(rows, [0] * len(groups), pieces, logits="none")
            for index, (g, end) in enumerate(zip(groups, group_ends, strict=True)):
                for i in g:
                    parent[i], starts[i] = index, end
        rows, final_logits = self._extend(
            rows, parent, [c.ids[s:] for c, s in zip(batch, starts, strict=True)], logits="last"
        )

        owners = [r for r, c in enumerate(batch) for _ in c.targets]
        targets = [t for c in batch for t in c.targets]
        firsts = torch.tensor([ids[0] for _, _, ids in targets], device=dev)
        first_lp = _token_logprobs(final_logits[torch.tensor(owners, device=dev)], firsts).tolist()
        for (i, j, _), lp in zip(targets, first_lp, strict=True):
            results[i][j] = lp

        # Candidates of two or more tokens continue from their prompt's row, feeding all but the last token.
        # Sorted by length, so that rows of one forward need little padding.
        longer = sorted(
            ((owner, t) for owner, t in zip(owners, targets, strict=True) if len(t[2]) > 1),
            key=lambda x: len(x[1][2]),
        )
        chunk = 4 * max(1, self.options.batch_size)
        for start in range(0, len(longer), chunk):
            part = longer[start : start + chunk]
            _, logits = self._extend(
                rows, [owner for owner, _ in part], [ids[:-1] for _, (_, _, ids) in part], logits="all"
            )
            width = logits.shape[1]
            expected = torch.zeros((len(part), width), dtype=torch.long, device=dev)
            valid = torch.zeros((len(part), width), dtype=torch.bool, device=dev)
            for r, (_, (_, _, ids)) in enumerate(part):
                expected[r, : len(ids) - 1] = torch.tensor(ids[1:], device=dev)
                valid[r, : len(ids) - 1] = True
            sums = (_token_logprobs(logits, expected) * valid).sum(dim=1).tolist()
            for (_, (i, j, _)), extra in zip(part, sums, strict=True):
                results[i][j] += extra

    def _keep(self, keep: int | torch.Tensor) -> dict[str, int | torch.Tensor]:
        """``logits_to_keep=keep`` for models that accept it (others compute every position's logits)."""
        return {"logits_to_keep": keep} if self._keeps_logits else {}

    def _prefix(self, ids: tuple[int, ...]) -> _Rows | None:
        """One row holding ``ids``, extending or cutting the prefix kept from the previous batch."""
        if not ids:
            return None
        common = _lcp(self._prefix_ids, ids)
        rows = self._prefix_rows.head(common) if self._prefix_rows is not None and common > 0 else None
        if len(ids) > common:
            rows, _ = self._extend(rows, [0], [ids[common:]], logits="none")
        self._prefix_ids, self._prefix_rows = ids, rows
        return rows

    def _extend(
        self, parent: _Rows | None, index: list[int], pieces: Sequence[Sequence[int]], *, logits: str
    ) -> tuple[_Rows, torch.Tensor]:
        """Run ``pieces[r]`` after row ``index[r]`` of ``parent`` (or from scratch), right-padded in one batch.

        Args:
            parent: Rows to continue from; ``None`` starts at position 0.
            index: For each piece, the parent row it continues (ignored without a parent).
            pieces: Token ids to feed, one sequence per new row (may be empty).
            logits: ``"last"``: ``[rows, vocab]`` at each row's last new token; ``"all"``:
                ``[rows, width, vocab]`` at every new position; ``"none"``: nothing useful.

        Returns:
            The new rows (the parent's positions followed by the pieces) and the requested logits.
        """
        dev = self.device
        n = len(pieces)
        lengths = [len(p) for p in pieces]
        width = max(1, max(lengths))
        input_ids = torch.full((n, width), self._pad_id, dtype=torch.long, device=dev)
        new_mask = torch.zeros((n, width), dtype=torch.long, device=dev)
        for r, piece in enumerate(pieces):
            if piece:
                input_ids[r, : len(piece)] = torch.tensor(piece, device=dev)
                new_mask[r, : len(piece)] = 1
        if parent is None:
            past, mask, starts = None, new_mask, torch.zeros(n, dtype=torch.long, device=dev)
        else:
            chosen = parent.select(torch.tensor(index, device=dev))
            past, mask, starts = chosen.kv, torch.cat([chosen.mask, new_mask], dim=1), chosen.lengths
        positions = starts.unsqueeze(1) + torch.arange(width, device=dev)
        last = [max(0, length - 1) for length in lengths]
        kept = sorted(set(last))
        keep: int | torch.Tensor = 0
        if logits == "none":
            keep = 1
        elif logits == "last":
            keep = torch.tensor(kept, device=dev)
        # Plain full-attention layers, even for sliding-window models: rows hold padding in the middle, so a
        # sliding layer's "keep the last N" would drop the wrong positions (the mask still applies the window).
        cache = DynamicCache(ddp_cache_data=past) if past else DynamicCache()
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            **self._keep(keep),
        )
        self.usage.forward_tokens += sum(lengths)
        result = out.logits
        if logits == "last":
            columns = [kept.index(c) for c in last] if self._keeps_logits else last
            result = result[torch.arange(n, device=dev), torch.tensor(columns, device=dev)]
        rows = _Rows(
            [(layer.keys, layer.values) for layer in out.past_key_values.layers],
            mask,
            starts + torch.tensor(lengths, device=dev),
        )
        return rows, result

    @torch.inference_mode()
    def loglikelihood_naive(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """The baseline scorer: one full forward pass per prompt and candidate, nothing shared or batched.

        Gives the same numbers as :meth:`score` (up to float rounding) and updates :attr:`usage` the same way.
        """
        results: list[list[float]] = []
        with self._timed():
            for request in requests:
                context, candidates = _chat.encode_candidates(
                    self.tokenizer, request.prompt, request.candidates
                )
                scores = []
                for ids in candidates:
                    if not ids:
                        scores.append(0.0)
                        continue
                    full = torch.tensor([context + ids], device=self.device)
                    logits = self.model(input_ids=full).logits[0, len(context) - 1 : -1]
                    self.usage.forward_tokens += full.shape[1]
                    scores.append(float(_token_logprobs(logits, full[0, len(context) :]).sum()))
                results.append(scores)
        self.usage.prompts += len(requests)
        return results

    # --------------------------------------------------------------- generation

    @torch.inference_mode()
    def _generate(self, requests: list[GenerateRequest]) -> list[str]:
        prompts = [_chat.encode_prompt(self.tokenizer, r.prompt) for r in requests]
        seeds = [
            (r.seed if r.seed is not None else self._seed_stream.getrandbits(63)) if r.temperature > 0 else 0
            for r in requests
        ]
        order = sorted(range(len(requests)), key=lambda i: len(prompts[i]))
        replies = [""] * len(requests)
        size = max(1, self.options.batch_size)
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            outputs = self._generate_batch(
                [prompts[i] for i in chosen], [requests[i] for i in chosen], [seeds[i] for i in chosen]
            )
            for i, ids in zip(chosen, outputs, strict=True):
                replies[i] = _chat.decode_reply(self.tokenizer, ids, self._stop_ids)
        return replies

    def _generate_batch(
        self, prompts: list[list[int]], requests: list[GenerateRequest], seeds: list[int]
    ) -> list[list[int]]:
        dev = self.device
        rows = len(prompts)
        generated: list[list[int]] = [[] for _ in range(rows)]
        done = [r.max_new_tokens <= 0 for r in requests]
        if all(done):
            return generated
        width = max(len(p) for p in prompts)
        input_ids = torch.full((rows, width), self._pad_id, dtype=torch.long, device=dev)
        mask = torch.zeros((rows, width), dtype=torch.long, device=dev)
        for r, ids in enumerate(prompts):  # left padding: every prompt ends at the last column
            if ids:
                input_ids[r, width - len(ids) :] = torch.tensor(ids, device=dev)
            mask[r, width - len(ids) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        generators = [
            torch.Generator(device=dev).manual_seed(seed) if r.temperature > 0 else None
            for r, seed in zip(requests, seeds, strict=True)
        ]
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            **self._keep(1),
        )
        self.usage.forward_tokens += sum(len(p) for p in prompts)
        next_position = positions[:, -1] + 1
        while True:
            logits = out.logits[:, -1, :]
            greedy = logits.argmax(dim=-1).tolist()
            step = torch.full((rows, 1), self._pad_id, dtype=torch.long, device=dev)
            for r, request in enumerate(requests):
                if done[r]:
                    continue
                generator = generators[r]
                token = (
                    greedy[r] if generator is None else self._sample(logits[r].float(), request, generator)
                )
                generated[r].append(token)
                step[r, 0] = token
                if token in self._stop_ids or len(generated[r]) >= request.max_new_tokens:
                    done[r] = True
            if all(done):
                break
            mask = torch.cat([mask, torch.ones((rows, 1), dtype=torch.long, device=dev)], dim=1)
            out = self.model(
                input_ids=step,
                attention_mask=mask,
                position_ids=next_position.unsqueeze(1),
                past_key_values=cache,
                use_cache=True,
            )
            next_position = next_position + 1
        produced = sum(len(g) for g in generated)
        self.usage.generated_tokens += produced
        self.usage.forward_tokens += produced
        return generated

    @staticmethod
    def _sample(logits: torch.Tensor, request: GenerateRequest, generator: torch.Generator) -> int:
        """A temperature and nucleus (top-p) sample of one row's next token."""
        probs = torch.softmax(logits / request.temperature, dim=-1)
        if request.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            outside = sorted_probs.cumsum(-1) - sorted_probs > request.top_p
            sorted_probs[outside] = 0.0
            probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
        return int(torch.multinomial(probs, 1, generator=generator))

    def close(self) -> None:
        """Drop the model and free cached GPU memory."""
        if getattr(self, "model", None) is not None:
            del self.model
            self.model = None  # type: ignore[assignment]
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
