"""Training a causal LM to hold a given distribution over candidate answers ("soft choice" training).

Each training example is a prompt, its candidate answers and a target distribution over them. The loss is
what the moral evaluation measures, made differentiable: the cross-entropy between the target and the softmax
of the candidates' log-likelihoods, plus a small target-weighted negative log-likelihood of each candidate
(followed by the end-of-turn token) so that greedy generation also produces the preferred answer and stops.

Cost is kept low in three ways: examples whose candidates are all single tokens are read from the context's
last position; longer candidates are packed after one copy of the context under a block-causal mask; and the
output projection is applied only at the positions whose next token is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from progressgym.backends.base import Conversation

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ChoiceExample:
    """A prompt, its candidate answers and the distribution the model should hold over them."""

    conversation: Conversation
    candidates: tuple[str, ...]
    target: tuple[float, ...]


@dataclass(frozen=True)
class _Encoded:
    """One example packed into one sequence: the context, then each candidate followed by the end token.

    Candidates attend to the context and to their own earlier tokens only (a block-causal mask) and continue
    the context's positions, so the packed row scores exactly what separate ``context + candidate`` rows
    would, while the context is computed once.
    """

    tokens: tuple[int, ...]
    positions: tuple[int, ...]
    context_len: int
    blocks: tuple[tuple[int, int], ...]  # (start, length) of each candidate block; empty when single-token
    candidate_ids: tuple[tuple[int, ...], ...]
    target: tuple[float, ...]

    @property
    def single(self) -> bool:
        return not self.blocks


def encode_examples(
    tokenizer: Any, examples: Sequence[ChoiceExample], cache: dict[Any, _Encoded] | None = None
) -> list[_Encoded]:
    """Tokenise examples exactly as the backends score them (same context/candidate split).

    Args:
        tokenizer: The model's tokenizer.
        examples: The examples.
        cache: Optional memo of earlier encodings (keyed by prompt and candidates), reused across passes.
    """
    from progressgym.backends._chat import encode_for_scoring

    end_id = tokenizer.eos_token_id
    encoded = []
    for example in examples:
        key = (example.conversation, example.candidates)
        if cache is not None and key in cache:
            known = cache[key]
            encoded.append(
                _Encoded(
                    known.tokens,
                    known.positions,
                    known.context_len,
                    known.blocks,
                    known.candidate_ids,
                    example.target,
                )
            )
            continue
        pieces = [encode_for_scoring(tokenizer, example.conversation, c) for c in example.candidates]
        context = tuple(pieces[0][0])
        candidates = tuple(tuple(p[1]) for p in pieces)
        tokens, positions, blocks = list(context), list(range(len(context))), []
        if not all(len(c) == 1 for c in candidates):
            for cand in candidates:
                block = (*cand, end_id)
                blocks.append((len(tokens), len(block)))
                tokens.extend(block)
                positions.extend(range(len(context), len(context) + len(block)))
        item = _Encoded(
            tuple(tokens), tuple(positions), len(context), tuple(blocks), candidates, example.target
        )
        if cache is not None:
            cache[key] = item
        encoded.append(item)
    return encoded


def _block_mask(batch: Sequence[_Encoded], width: int) -> torch.Tensor:
    import torch

    causal = torch.tril(torch.ones(width, width, dtype=torch.bool))
    masks = []
    for example in batch:
        allowed = causal.clone()
        n = len(example.tokens)
        for start, length in example.blocks:
            # A candidate block sees the context and itself, not the candidates packed before it.
            allowed[start : start + length, example.context_len : start] = False
        allowed[n:, :] = False
        allowed[:, n:] = False
        allowed[torch.arange(n, width), torch.arange(n, width)] = True  # padding attends to itself only
        masks.append(allowed)
    return torch.stack(masks).unsqueeze(1)


def _batch_loss(model: Any, batch: Sequence[_Encoded], nll_weight: float, pad_id: int) -> torch.Tensor:
    import torch

    width = max(len(e.tokens) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(batch), width), dtype=torch.long)
    for i, example in enumerate(batch):
        ids[i, : len(example.tokens)] = torch.tensor(example.tokens)
        positions[i, : len(example.tokens)] = torch.tensor(example.positions)
    hidden = model.model(
        input_ids=ids, attention_mask=_block_mask(batch, width), position_ids=positions
    ).last_hidden_state

    # Index every scored next-token once: which row and position predicts it, which candidate it belongs to.
    g_row, g_pos, g_tok, g_cand, g_end = [], [], [], [], []
    max_cands = max(len(e.candidate_ids) for e in batch)
    for b, example in enumerate(batch):
        last = example.context_len - 1
        for c, cand in enumerate(example.candidate_ids):
            slot = b * max_cands + c
            if example.single:
                g_row.append(b)
                g_pos.append(last)
                g_tok.append(cand[0])
                g_cand.append(slot)
                g_end.append(False)
                continue
            start, length = example.blocks[c]
            block = example.tokens[start : start + length]
            for k, token in enumerate(block):
                g_row.append(b)
                g_pos.append(last if k == 0 else start + k - 1)
                g_tok.append(token)
                g_cand.append(slot)
                g_end.append(k == length - 1)
    selected = hidden[torch.tensor(g_row), torch.tensor(g_pos)]
    logprobs = torch.log_softmax(model.lm_head(selected).float(), dim=-1)
    token_lp = logprobs.gather(1, torch.tensor(g_tok).unsqueeze(1)).squeeze(1)

    slots = len(batch) * max_cands
    cand_index = torch.tensor(g_cand)
    is_end = torch.tensor(g_end)
    cand_lp = token_lp.new_zeros(slots).index_add(0, cand_index[~is_end], token_lp[~is_end])
    all_lp = token_lp.new_zeros(slots).index_add(0, cand_index, token_lp)
    counts = torch.zeros(slots).index_add(0, cand_index, torch.ones(len(g_cand)))

    target = torch.zeros(slots)
    present = torch.zeros(slots, dtype=torch.bool)
    for b, example in enumerate(batch):
        n = len(example.candidate_ids)
        target[b * max_cands : b * max_cands + n] = torch.tensor(example.target)
        present[b * max_cands : b * max_cands + n] = True
    scores = cand_lp.masked_fill(~present, float("-inf")).view(len(batch), max_cands)
    target = target.view(len(batch), max_cands)
    log_choice = torch.log_softmax(scores, dim=1).masked_fill(~present.view(len(batch), max_cands), 0.0)
    choice = -(target * log_choice).sum(dim=1)
    nll = (target * (-all_lp / counts.clamp(min=1)).view(len(batch), max_cands)).sum(dim=1)
    return (choice + nll_weight * nll).mean()


def train_choices(
    model: Any,
    tokenizer: Any,
    passes: Sequence[Sequence[ChoiceExample]],
    *,
    learning_rate: float,
    batch_size: int = 32,
    nll_weight: float = 0.2,
    seed: int = 0,
    progress: Any = None,
    encoding_cache: dict[Any, Any] | None = None,
) -> list[float]:
    """Train ``model`` in place, one pass over each example list in ``passes``; returns each pass's mean loss.

    Args:
        model: A ``*ForCausalLM`` with ``.model`` (the decoder) and ``.lm_head``.
        tokenizer: Its tokenizer (with a chat template).
        passes: The examples of each pass (passes may differ, e.g. in the option orders they show).
        learning_rate: Peak AdamW learning rate (linear decay to 10% over all passes).
        batch_size: Examples per step.
        nll_weight: Weight of the target-weighted NLL term.
        seed: Seed for the data order.
        progress: Optional ``tqdm`` bar, advanced by one per step.
        encoding_cache: Optional memo of tokenised prompts shared across calls (see :func:`encode_examples`).

    Returns:
        Mean loss per pass.
    """
    import torch

    rng = np.random.default_rng(seed)
    total_steps = max(1, sum(int(np.ceil(len(p) / batch_size)) for p in passes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - 0.9 * step / total_steps)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.train()
    history: list[float] = []
    for examples in passes:
        encoded = encode_examples(tokenizer, examples, encoding_cache)
        order = rng.permutation(len(encoded))
        # Similar lengths per batch waste less padding; shuffling the batches keeps the order random.
        batches: list[list[int]] = []
        for i in range(0, len(order), batch_size * 8):
            chunk = sorted(order[i : i + batch_size * 8], key=lambda j: len(encoded[j].tokens))
            batches.extend(list(chunk[k : k + batch_size]) for k in range(0, len(chunk), batch_size))
        losses = []
        for index in rng.permutation(len(batches)):
            loss = _batch_loss(model, [encoded[i] for i in batches[index]], nll_weight, pad_id)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress.update(1)
        history.append(float(np.mean(losses)) if losses else float("nan"))
    model.eval()
    return history
