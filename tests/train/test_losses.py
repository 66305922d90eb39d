import math

import pytest
import torch

from preflab.train.losses import bradley_terry_loss, dpo_loss, reward_loss, soft_label_loss


def test_soft_label_loss_is_the_rlaif_cross_entropy():
    r1, r2, p = torch.tensor([1.3, -0.2]), torch.tensor([0.1, 0.9]), torch.tensor([0.7, 0.2])
    log_softmax = torch.log_softmax(torch.stack([r1, r2], dim=1), dim=1)
    expected = -(p * log_softmax[:, 0] + (1 - p) * log_softmax[:, 1])
    assert torch.allclose(soft_label_loss(r1, r2, p), expected, atol=1e-6)


def test_hard_soft_label_equals_bradley_terry():
    r1, r2 = torch.tensor([0.5, -2.0, 3.0]), torch.tensor([0.0, 1.0, 3.5])
    assert torch.allclose(soft_label_loss(r1, r2, torch.ones(3)), bradley_terry_loss(r1, r2))
    assert math.isclose(bradley_terry_loss(torch.tensor(0.0), torch.tensor(0.0)).item(),
                        math.log(2), rel_tol=1e-6)


def test_soft_label_loss_is_smallest_where_sigmoid_of_margin_is_p():
    d = torch.linspace(-4, 4, 801)
    loss = soft_label_loss(d, torch.zeros_like(d), torch.full_like(d, 0.8))
    best = d[loss.argmin()].item()
    assert abs(best - math.log(0.8 / 0.2)) < 0.02


def test_margin_and_weights():
    r1, r2 = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0])
    assert torch.allclose(bradley_terry_loss(r1, r2, margin=1.0), torch.full((2,), math.log(2)))
    w = torch.tensor([0.0, 2.0])
    assert math.isclose(reward_loss(r1, r2, weight=w).item(),
                        bradley_terry_loss(r1, r2)[1].item(), rel_tol=1e-6)
    # soft labels use p_chosen; Bradley-Terry ignores nothing else
    assert reward_loss(r1, r2, p_chosen=torch.tensor([0.5, 0.5])).item() > \
        reward_loss(r1, r2).item()


def test_dpo_losses_at_zero_and_their_relations():
    d = torch.linspace(-3, 3, 13)
    zero = torch.zeros_like(d)
    sig = dpo_loss(d, zero, "sigmoid", beta=0.5)
    assert torch.allclose(dpo_loss(zero, zero, "sigmoid", 0.5), torch.full_like(d, math.log(2)))
    # eps = 0: conservative and robust DPO are plain DPO
    assert torch.allclose(dpo_loss(d, zero, "cdpo", 0.5, eps=0.0), sig)
    assert torch.allclose(dpo_loss(d, zero, "robust", 0.5, eps=0.0), sig)
    # cDPO is soft DPO with target 1 - eps
    eps = 0.2
    assert torch.allclose(dpo_loss(d, zero, "cdpo", 0.5, eps=eps),
                          dpo_loss(d, zero, "soft", 0.5, p_chosen=torch.full_like(d, 1 - eps)))
    # robust DPO is unbiased: its expectation over label flips at rate eps is the clean loss
    robust = dpo_loss(d, zero, "robust", 0.5, eps=eps)
    flipped = dpo_loss(-d, zero, "robust", 0.5, eps=eps)
    assert torch.allclose((1 - eps) * robust + eps * flipped, sig, atol=1e-6)
    # IPO: zero loss where the per-token log-ratio gap is 1 / (2 beta)
    n = torch.full_like(d, 4.0)
    assert dpo_loss(torch.tensor([4.0]), torch.tensor([0.0]), "ipo", 0.5,
                    n_chosen=n[:1], n_rejected=n[:1]).item() == pytest.approx(0.0)
    # soft DPO at p = 0.5 is minimal (zero gradient) at d = 0
    x = torch.zeros(1, requires_grad=True)
    dpo_loss(x, torch.zeros(1), "soft", 0.5, p_chosen=torch.tensor([0.5])).sum().backward()
    assert x.grad.abs().item() < 1e-7
    with pytest.raises(ValueError, match="eps"):
        dpo_loss(d, zero, "robust", 0.5, eps=0.5)


def test_scit_loss_by_hand():
    from preflab.train.losses import scit_loss

    good_sums = torch.tensor([[-4.0, -9.0]])  # chosen, rejected under the good instruction
    bad_sums = torch.tensor([[-8.0, -3.0]])
    n = torch.tensor([[2.0, 3.0]])
    loss, stats = scit_loss(good_sums, n, bad_sums, n, eps=0.2, weight=1.0)
    ce = (4.0 + 3.0) / (2 + 3)
    # chosen: logits (mean log p) good -2, bad -4 -> label good; rejected: -3, -1 -> bad
    def smoothed(right, wrong):
        lp = torch.log_softmax(torch.tensor([right, wrong]), 0)
        return -(0.9 * lp[0] + 0.1 * lp[1])
    contrast = (smoothed(-2.0, -4.0) + smoothed(-1.0, -3.0)) / 2
    assert float(loss) == pytest.approx(ce + float(contrast), rel=1e-5)
    assert float(stats["instruction_accuracy"]) == 1.0
    plain, _ = scit_loss(good_sums, n, bad_sums, n, weight=0.0)
    assert float(plain) == pytest.approx(ce)
    with pytest.raises(ValueError, match="eps"):
        scit_loss(good_sums, n, bad_sums, n, eps=1.0)


def test_representation_loss_is_zero_at_the_target_and_one_shift_at_the_base():
    from preflab.train.losses import representation_loss

    g = [torch.randn(5, 4)]
    b = [torch.randn(5, 4)]
    base = [torch.randn(5, 4)]
    target = [base[0] + 3.0 * (g[0] - b[0])]
    loss, stats = representation_loss(target, base, g, b, alpha=3.0)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    loss, stats = representation_loss(base, base, g, b, alpha=3.0)
    assert float(stats["distance_ratio"]) == pytest.approx(1.0)
    assert float(loss) == pytest.approx(float((3.0 * (g[0] - b[0])).norm(dim=-1).mean()))
