"""The hand-written losses against values worked out by hand on small inputs."""

from __future__ import annotations

import math

import pytest
import torch

from progressgym.algorithms.losses import (
    gpm_loss,
    preference_table,
    skew_symmetric_score,
    sppo_loss,
    sppo_targets,
    stable_alignment_loss,
)


def _sa(nll: list[float], ratings: list[float], **kwargs: float | bool) -> float:
    out = stable_alignment_loss(torch.tensor([nll]), torch.tensor([ratings]), **kwargs)  # type: ignore[arg-type]
    assert out.shape == (1,)
    return float(out[0])


def test_stable_alignment_is_sft_when_worse_drafts_are_already_far_enough() -> None:
    # best = draft 0 (rating 7): 1 - 2 + 6/7 = -0.1429 and 1 - 1.5 + 3/7 = -0.0714, both below 0: no penalty
    assert _sa([1.0, 2.0, 1.5], [7, 1, 4], rating_scale=7, margin=1.0, ratio=0.2) == pytest.approx(1.0)
    assert _sa([1.0, 2.0, 1.5], [7, 1, 4], max_flow=True) == pytest.approx(1.0)


def test_stable_alignment_penalises_a_worse_draft_that_is_too_likely() -> None:
    # best NLL 2; terms 2 - 1 + 6/7 = 1.857143 and 2 - 3 + 3/7 = -0.571429
    mean = (1.857143 - 0.571429) / 2
    assert _sa([2.0, 1.0, 3.0], [7, 1, 4], ratio=0.2) == pytest.approx(2.0 + 0.2 * mean, abs=1e-5)
    assert _sa([2.0, 1.0, 3.0], [7, 1, 4], ratio=0.2, max_flow=True) == pytest.approx(
        2.0 + 0.2 * 1.857143, abs=1e-5
    )
    # the best draft is found wherever it sits
    assert _sa([1.0, 3.0, 2.0], [1, 4, 7], ratio=0.2) == pytest.approx(
        2.0 + 0.2 * ((2 - 1 + 6 / 7) + (2 - 3 + 3 / 7)) / 2, abs=1e-5
    )


def test_stable_alignment_margin_scales_with_the_rating_gap() -> None:
    no_margin = _sa([1.0, 2.0, 1.5], [7, 1, 4], margin=0.0, ratio=0.2)
    big_margin = _sa([1.0, 2.0, 1.5], [7, 1, 4], margin=10.0, ratio=0.2)
    assert no_margin == pytest.approx(1.0)
    # terms -1 + 60/7 and -0.5 + 30/7
    assert big_margin == pytest.approx(1.0 + 0.2 * ((-1 + 60 / 7) + (-0.5 + 30 / 7)) / 2, abs=1e-5)
    # equal ratings ask for no gap: a tie with a likelier draft is penalised by the NLL difference alone
    assert _sa([2.0, 1.0], [5, 5], margin=10.0, ratio=0.5) == pytest.approx(2.0 + 0.5 * 1.0)


def test_stable_alignment_gradient_signs_and_masks() -> None:
    nll = torch.tensor([[2.0, 1.0]], requires_grad=True)
    stable_alignment_loss(nll, torch.tensor([[7.0, 1.0]]), ratio=0.2).sum().backward()
    assert nll.grad is not None
    # lowering the best draft's NLL helps; raising the worse one's NLL helps while the hinge is active
    assert nll.grad[0, 0] == pytest.approx(1.2) and nll.grad[0, 1] == pytest.approx(-0.2)
    batch = stable_alignment_loss(
        torch.tensor([[1.0, 2.0, 9.0], [0.5, 0.0, 0.0]]),
        torch.tensor([[3.0, 5.0, 7.0], [4.0, 0.0, 0.0]]),
        mask=torch.tensor([[True, True, False], [True, False, False]]),
        ratio=0.2,
    )
    # row 0: the masked draft (rating 7) is ignored, best is draft 1: 2 - 1 + 2/7 > 0; row 1: one draft, SFT
    assert batch.tolist() == pytest.approx([2.0 + 0.2 * (1 + 2 / 7), 0.5], abs=1e-6)


def test_skew_symmetric_score_matches_the_block_matrix_form() -> None:
    a, b = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([5.0, 6.0, 7.0, 8.0])
    # (1*6 - 2*5) + (3*8 - 4*7)
    assert float(skew_symmetric_score(a, b)) == pytest.approx(-8.0)
    assert float(skew_symmetric_score(b, a)) == pytest.approx(8.0)
    assert float(skew_symmetric_score(a, a)) == 0.0
    r = torch.tensor(
        [[0.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 1.0, 0.0]]
    )
    assert float((r @ a) @ b) == pytest.approx(float(skew_symmetric_score(a, b)))
    with pytest.raises(ValueError):
        skew_symmetric_score(torch.ones(3), torch.ones(3))


def test_gpm_loss_hard_and_soft_labels() -> None:
    up, right = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    # s(up > right) = 1, over tau 0.5 -> logit 2
    assert float(gpm_loss(up, right, tau=0.5)) == pytest.approx(math.log1p(math.exp(-2.0)))
    assert float(gpm_loss(right, up, tau=0.5)) == pytest.approx(math.log1p(math.exp(2.0)))
    soft = 0.75 * math.log1p(math.exp(-2.0)) + 0.25 * math.log1p(math.exp(2.0))
    assert float(gpm_loss(up, right, tau=0.5, target=torch.tensor([0.75]))) == pytest.approx(soft)
    assert float(gpm_loss(up, right, tau=0.5, target=torch.tensor([1.0]))) == pytest.approx(
        float(gpm_loss(up, right, tau=0.5))
    )


def test_preference_table_is_skew_symmetric() -> None:
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    table = preference_table(v, tau=0.5)
    assert torch.allclose(table, -table.T)
    assert (
        table[0, 1] == pytest.approx(2.0)
        and table[0, 2] == pytest.approx(2.0)
        and table[1, 2] == pytest.approx(-2.0)
    )


def test_sppo_targets_by_hand() -> None:
    table = torch.tensor([[0.0, 2.0, -1.0], [-2.0, 0.0, 0.5], [1.0, -0.5, 0.0]])
    gpo = sppo_targets(table, eta=2.0, objective="gpo")
    assert gpo.tolist() == pytest.approx([1.0, -1.5, 0.5])
    assert float(gpo.sum()) == pytest.approx(0.0)

    def sig(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    sppo = sppo_targets(table, eta=2.0, objective="sppo")
    expected = [
        2 * ((sig(2) + sig(-1)) / 2 - 0.5),
        2 * ((sig(-2) + sig(0.5)) / 2 - 0.5),
        2 * ((sig(1) + sig(-0.5)) / 2 - 0.5),
    ]
    assert sppo.tolist() == pytest.approx(expected, abs=1e-6)
    assert sppo[0] > 0 > sppo[1]
    with pytest.raises(ValueError):
        sppo_targets(torch.zeros((1, 1)), eta=1.0)


def test_sppo_loss_by_hand_and_against_trl_hard_form() -> None:
    loss = sppo_loss(torch.tensor([1.0]), torch.tensor([-1.0]), torch.tensor([2.0]), torch.tensor([-3.0]))
    assert float(loss[0]) == pytest.approx(0.5 * ((1 - 2) ** 2 + (-1 + 3) ** 2))
    # P_w = 1, P_l = 0 gives TRL's sppo_hard: (r_w - 1/(2 beta))^2 + (r_l + 1/(2 beta))^2, twice ours
    beta, rw, rl = 0.1, torch.tensor([0.3]), torch.tensor([0.7])
    ours = sppo_loss(rw, rl, torch.tensor([(1 - 0.5) / beta]), torch.tensor([(0 - 0.5) / beta]))
    trl_hard = (rw - 0.5 / beta) ** 2 + (rl + 0.5 / beta) ** 2
    assert float(2 * ours[0]) == pytest.approx(float(trl_hard[0]))
    # the gradient pulls a log-ratio below its target up, and one above its target down
    r = torch.tensor([0.0, 5.0], requires_grad=True)
    sppo_loss(r[:1], r[1:], torch.tensor([1.0]), torch.tensor([1.0])).sum().backward()
    assert r.grad is not None and r.grad[0] < 0 < r.grad[1]
