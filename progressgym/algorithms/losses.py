"""The losses that TRL lacks: Stable Alignment's rated-margin loss, the GPM preference loss, SPPO/GPO, NS-DPO.

Every function is a few lines of tensor arithmetic, free of models and trainers, so that the trainers of
:mod:`progressgym.algorithms.stable_alignment` and :mod:`progressgym.algorithms.gpo` stay thin and the
formulas can be checked by hand (``tests/algorithms/test_losses.py``).

* :func:`stable_alignment_loss`: SFT on the best-rated response plus a hinge, scaled by the rating gap,
  that pushes the negative log-likelihood of every worse-rated response above the best one's
  (Liu et al., "Training Socially Aligned Language Models on Simulated Social Interactions").
* :func:`skew_symmetric_score`, :func:`gpm_loss`, :func:`preference_table`: the General Preference Model's
  score ``s(y_i > y_j) = <R v_i, v_j>`` with ``R`` block-diagonal ``[[0, -1], [1, 0]]`` (so
  ``s(i > j) = -s(j > i)``) and its logistic loss (Zhang et al., "Beyond Bradley-Terry Models").
* :func:`sppo_targets`, :func:`sppo_loss`: the self-play square loss that regresses
  ``log pi(y) / pi_t(y)`` on ``eta`` times each response's advantage (SPPO: win probability minus 1/2; GPO:
  mean skew-symmetric score).
* :func:`discounts`, :func:`normalise_weights`, :func:`weighted_dpo_loss`, :func:`weighted_sft_loss`: NS-DPO's
  exponentially discounted DPO, each pair's loss weighted by ``gamma ** age`` (Son et al., "Right Now, Wrong
  Then: Non-Stationary Direct Preference Optimization under Preference Drift").

>>> import torch
>>> float(skew_symmetric_score(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])))
1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from torch import Tensor

Objective = Literal["sppo", "gpo"]
OBJECTIVES: tuple[Objective, ...] = ("sppo", "gpo")


def stable_alignment_loss(
    nll: Tensor,
    ratings: Tensor,
    *,
    mask: Tensor | None = None,
    rating_scale: float = 7.0,
    margin: float = 1.0,
    ratio: float = 0.2,
    max_flow: bool = False,
) -> Tensor:
    r"""Stable Alignment's loss for each query's rated responses.

    With :math:`\ell_i` the mean token negative log-likelihood of response :math:`i`, :math:`b` the
    best-rated response (the first one on ties), :math:`s_i` the ratings, :math:`S` the rating scale,
    :math:`m` the margin and :math:`\lambda` the ratio:

    .. math:: L = \ell_b + \lambda \max\big(0,\ \mathrm{AGG}_{j \ne b}\,[\ell_b - \ell_j + m (s_b - s_j) / S]\big)

    where AGG is the mean (``max_flow=False``) or the maximum (``max_flow=True``). A worse response adds to the
    loss until its NLL exceeds the best one's by ``m`` times their rating gap over ``S``. A query with one
    response is plain SFT on it.

    Args:
        nll: ``[queries, responses]`` mean token NLL of each response.
        ratings: ``[queries, responses]`` the responses' ratings (higher is better).
        mask: ``[queries, responses]``, ``True`` where a response exists (``None``: all do).
        rating_scale: ``S``, the top of the rating scale.
        margin: ``m``, the NLL gap per full rating scale.
        ratio: ``lambda``, the weight of the penalty.
        max_flow: Aggregate the penalties by their maximum instead of their mean.

    Returns:
        ``[queries]`` losses.
    """
    if mask is None:
        mask = torch.ones_like(nll, dtype=torch.bool)
    mask = mask.bool()
    ratings = ratings.to(nll.dtype)
    low = torch.finfo(nll.dtype).min
    best = torch.where(mask, ratings, torch.full_like(ratings, low)).argmax(dim=1, keepdim=True)
    best_nll = nll.gather(1, best)
    best_rating = ratings.gather(1, best)
    others = mask.clone()
    others.scatter_(1, best, False)
    terms = best_nll - nll + margin * (best_rating - ratings) / rating_scale
    count = others.sum(dim=1)
    if max_flow:
        neg_inf = torch.full_like(terms, float("-inf"))
        aggregated = torch.where(others, terms, neg_inf).max(dim=1).values
    else:
        aggregated = torch.where(others, terms, torch.zeros_like(terms)).sum(dim=1) / count.clamp(min=1)
    penalty = torch.where(count > 0, aggregated.clamp(min=0.0), torch.zeros_like(aggregated))
    return best_nll.squeeze(1) + ratio * penalty


def skew_symmetric_score(first: Tensor, second: Tensor) -> Tensor:
    """``s(first > second) = <R first, second>``: for each 2-block, ``a0 b1 - a1 b0``, summed over blocks.

    Args:
        first: ``[..., 2k]`` preference embeddings.
        second: ``[..., 2k]`` preference embeddings.

    Returns:
        ``[...]`` scores; ``s(a, b) = -s(b, a)`` and ``s(a, a) = 0``.
    """
    if first.shape[-1] % 2 or first.shape[-1] != second.shape[-1]:
        raise ValueError(f"embeddings need the same even size, got {first.shape[-1]} and {second.shape[-1]}")
    return (first[..., 0::2] * second[..., 1::2] - first[..., 1::2] * second[..., 0::2]).sum(dim=-1)


def gpm_loss(chosen: Tensor, rejected: Tensor, *, tau: float = 0.1, target: Tensor | None = None) -> Tensor:
    """The GPM loss: ``-log sigmoid(s(chosen > rejected) / tau)``, averaged over the batch.

    With ``target`` (the probability that ``chosen`` is preferred), the logistic loss against that soft label:
    ``-(p log sigmoid(s / tau) + (1 - p) log sigmoid(-s / tau))``; ``p = 1`` gives the hard-label loss.

    Args:
        chosen: ``[batch, 2k]`` embeddings of the preferred responses.
        rejected: ``[batch, 2k]`` embeddings of the other responses.
        tau: The temperature.
        target: ``[batch]`` preference probabilities, or ``None`` for hard labels.
    """
    logits = skew_symmetric_score(chosen, rejected) / tau
    if target is None:
        return -F.logsigmoid(logits).mean()
    target = target.to(logits.dtype)
    return -(target * F.logsigmoid(logits) + (1.0 - target) * F.logsigmoid(-logits)).mean()


def preference_table(embeddings: Tensor, *, tau: float = 0.1) -> Tensor:
    """The ``[K, K]`` table ``s(y_i > y_j) / tau`` of K responses' embeddings ``[K, 2k]`` (skew-symmetric)."""
    return skew_symmetric_score(embeddings.unsqueeze(1), embeddings.unsqueeze(0)) / tau


def sppo_targets(table: Tensor, *, eta: float, objective: Objective = "gpo") -> Tensor:
    """Each response's regression target ``eta * advantage`` from a ``[K, K]`` preference table.

    * ``sppo``: ``table[i, j]`` is a log-odds of ``y_i > y_j``; the advantage is the mean win probability
      against the other responses minus 1/2, ``mean_j sigmoid(table[i, j]) - 1/2`` (SPPO's ``P_hat - 1/2``).
    * ``gpo``: ``table[i, j]`` is a skew-symmetric score; the advantage is its mean over the other responses,
      ``mean_j table[i, j]``, the response's expected score against the policy's own samples in GPO's
      objective (already centred, since the scores of a response against itself and the sum over all
      pairs are zero).

    Args:
        table: ``[K, K]`` with ``K >= 2``.
        eta: The inverse of the KL strength (``1 / beta``).
        objective: ``sppo`` or ``gpo``.

    Returns:
        ``[K]`` targets.
    """
    k = table.shape[0]
    if table.shape != (k, k) or k < 2:
        raise ValueError(f"a preference table is [K, K] with K >= 2, got {tuple(table.shape)}")
    off = ~torch.eye(k, dtype=torch.bool, device=table.device)
    if objective == "sppo":
        values = torch.sigmoid(table)
        advantage = (values * off).sum(dim=1) / (k - 1) - 0.5
    elif objective == "gpo":
        advantage = (table * off).sum(dim=1) / (k - 1)
    else:
        raise ValueError(f"objective must be sppo or gpo, got {objective!r}")
    return eta * advantage


def sppo_loss(
    chosen_logratio: Tensor, rejected_logratio: Tensor, chosen_target: Tensor, rejected_target: Tensor
) -> Tensor:
    """SPPO's square loss per pair: ``((r_w - t_w)^2 + (r_l - t_l)^2) / 2``.

    ``r`` is ``log pi(y) - log pi_t(y)`` (the policy against the iteration's starting policy) and ``t`` the
    target of :func:`sppo_targets`, for the best (``w``) and worst (``l``) response of a prompt.

    Returns:
        ``[pairs]`` losses.
    """
    return 0.5 * ((chosen_logratio - chosen_target) ** 2 + (rejected_logratio - rejected_target) ** 2)


def discounts(ages: Tensor, gamma: float) -> Tensor:
    """NS-DPO's discount of a preference ``age`` steps old: ``gamma ** age`` (``0 ** 0 = 1``: the present counts).

    Args:
        ages: Non-negative ages in steps (the present is 0).
        gamma: The discount in [0, 1]; 1 weighs every age the same, 0 keeps only the present.

    Returns:
        The discounts, as float64.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    ages = ages.to(torch.float64)
    if bool((ages < 0).any()):
        raise ValueError("ages must be >= 0")
    return torch.where(ages == 0, torch.ones_like(ages), torch.full_like(ages, gamma) ** ages)


def normalise_weights(weights: Tensor) -> Tensor:
    """Weights rescaled to mean 1 over the whole training set: ``w * n / sum(w)``.

    A minibatch's mean of ``w_i * loss_i`` then estimates the training set's weighted mean
    ``sum(w_i loss_i) / sum(w_i)`` whatever the batching, and all-equal weights become exactly 1.

    Raises:
        ValueError: when the weights are empty, negative or all zero.
    """
    if weights.numel() == 0 or bool((weights < 0).any()):
        raise ValueError("weights must be non-empty and >= 0")
    total = weights.sum()
    if float(total) <= 0.0:
        raise ValueError("at least one weight must be positive")
    return weights * (weights.numel() / total)


def weighted_dpo_loss(
    chosen_logratio: Tensor, rejected_logratio: Tensor, weights: Tensor, *, beta: float
) -> Tensor:
    """DPO's sigmoid loss per pair, times the pair's weight: ``-w log sigmoid(beta (r_w - r_l))``.

    ``r`` is ``log pi(y) - log pi_ref(y)`` of the chosen (``w``) and rejected (``l``) response; with every
    weight 1 this is TRL's ``sigmoid`` loss per pair.

    Returns:
        ``[pairs]`` losses.
    """
    return -weights.to(chosen_logratio.dtype) * F.logsigmoid(beta * (chosen_logratio - rejected_logratio))


def weighted_sft_loss(token_logps: Tensor, mask: Tensor, weights: Tensor) -> Tensor:
    """The SFT term with each example's tokens weighted: ``-sum_i w_i sum_t logp_it / sum_i n_i``.

    The denominator is the batch's number of completion tokens, unweighted, so that with every weight 1 this
    is TRL's ``sft`` loss (the mean token NLL of the chosen completions).

    Args:
        token_logps: ``[batch, tokens]`` log-probabilities of the chosen completions' tokens.
        mask: ``[batch, tokens]``, 1 on completion tokens.
        weights: ``[batch]`` example weights.

    Returns:
        A scalar.
    """
    mask = mask.to(token_logps.dtype)
    per_example = (token_logps * mask).sum(dim=1)
    return -(weights.to(token_logps.dtype) * per_example).sum() / mask.sum().clamp(min=1.0)


__all__ = [
    "OBJECTIVES",
    "Objective",
    "discounts",
    "normalise_weights",
    "weighted_dpo_loss",
    "weighted_sft_loss",
    "gpm_loss",
    "preference_table",
    "skew_symmetric_score",
    "sppo_loss",
    "sppo_targets",
    "stable_alignment_loss",
]
