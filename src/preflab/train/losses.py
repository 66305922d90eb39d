"""Pairwise losses: reward models (rewards of the two replies) and the DPO family
(log-ratios of policy to reference)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from preflab.train.config import DPO_LOSSES


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor,
                       margin: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Per pair: -log sigmoid(r_c - r_r - m) (Ouyang et al.; the margin m as in Llama 2)."""
    return -F.logsigmoid(r_chosen - r_rejected - margin)


def soft_label_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor,
                    p_chosen: torch.Tensor) -> torch.Tensor:
    """Per pair: -sum_j p_j log softmax(r_1, r_2)_j, the RLAIF distillation loss.

    With two replies, softmax(r_c, r_r)_c = sigmoid(r_c - r_r), so this is the
    cross-entropy of sigmoid(d) against p_chosen; p = 1 gives Bradley-Terry.
    """
    d = r_chosen - r_rejected
    return -(p_chosen * F.logsigmoid(d) + (1 - p_chosen) * F.logsigmoid(-d))


def reward_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor,
                p_chosen: torch.Tensor | None = None, weight: torch.Tensor | None = None,
                margin: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Mean over the batch of weight * loss: soft-label when `p_chosen` is given,
    Bradley-Terry (with `margin`) otherwise. Weights carry per-pair weights and the
    subset mix L = L_help + lambda * L_harm."""
    if p_chosen is None:
        loss = bradley_terry_loss(r_chosen, r_rejected, margin)
    else:
        loss = soft_label_loss(r_chosen, r_rejected, p_chosen)
    if weight is not None:
        loss = loss * weight
    return loss.mean()




def dpo_loss(logratio_chosen: torch.Tensor, logratio_rejected: torch.Tensor, loss: str,
             beta: float, eps: float = 0.0, p_chosen: torch.Tensor | None = None,
             n_chosen: torch.Tensor | None = None, n_rejected: torch.Tensor | None = None
             ) -> torch.Tensor:
    """Per-pair loss of the DPO family; log-ratios are log pi(y|x) - log pi_ref(y|x).

    - ``sigmoid``: -log sigmoid(beta * d), d = logratio_c - logratio_r (Rafailov et al.).
    - ``cdpo``: conservative DPO, the label is right with probability 1 - eps:
      -(1 - eps) log sigmoid(beta d) - eps log sigmoid(-beta d).
    - ``robust``: the unbiased estimator under flip rate eps (Chowdhury et al. 2024):
      ((1 - eps) l(d) - eps l(-d)) / (1 - 2 eps), with l(d) = -log sigmoid(beta d).
    - ``ipo``: (d_c / n_c - d_r / n_r - 1 / (2 beta))^2, log-ratios averaged per reply
      token as in TRL (the IPO authors' normalisation).
    - ``soft``: each pair's own target p_chosen (an audit's or an AI labeler's
      probability): -(p log sigmoid(beta d) + (1 - p) log sigmoid(-beta d)).
    """
    d = logratio_chosen - logratio_rejected
    if loss == "sigmoid":
        return -F.logsigmoid(beta * d)
    if loss in ("cdpo", "robust") and not 0 <= eps < 0.5:
        raise ValueError(f"--eps must be in [0, 0.5) for {loss}, got {eps}")
    if loss == "cdpo":
        return -(1 - eps) * F.logsigmoid(beta * d) - eps * F.logsigmoid(-beta * d)
    if loss == "robust":
        return (-(1 - eps) * F.logsigmoid(beta * d) + eps * F.logsigmoid(-beta * d)) / (1 - 2 * eps)
    if loss == "ipo":
        if n_chosen is None or n_rejected is None:
            raise ValueError("ipo needs the reply token counts")
        h = logratio_chosen / n_chosen.clamp(min=1) - logratio_rejected / n_rejected.clamp(min=1)
        return (h - 1 / (2 * beta)) ** 2
    if loss == "soft":
        if p_chosen is None:
            raise ValueError("soft DPO needs p_chosen")
        return -(p_chosen * F.logsigmoid(beta * d) + (1 - p_chosen) * F.logsigmoid(-beta * d))
    raise ValueError(f"unknown DPO loss {loss!r}; choose from {', '.join(DPO_LOSSES)}")


def scit_loss(good_sums: torch.Tensor, good_n: torch.Tensor, bad_sums: torch.Tensor,
              bad_n: torch.Tensor, eps: float = 0.2, weight: float = 1.0
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """RAHF's SCIT loss over [B, 2] reply log-prob sums and token counts, column 0 the
    chosen reply and column 1 the rejected one, under the good and the bad instruction.

    Cross-entropy of the matched pairs (chosen | good, rejected | bad), per token, plus
    `weight` times a two-way softmax over p = exp(-mean token CE) under the two
    instructions, the chosen reply labelled "good" and the rejected one "bad", with
    label smoothing `eps` (0.2 in the public code). `weight=0` is plain instruction
    relabelling (HIR without its contrastive term). "Softmax over p" is read as the
    normalised share p_good / (p_good + p_bad), i.e. a softmax of the mean token
    log-probs; a softmax of the p values themselves would have vanishing gradients
    for the long, low-probability replies of HH.
    """
    if not 0 <= eps < 1:
        raise ValueError(f"eps must be in [0, 1), got {eps}")
    ce = -(good_sums[:, 0].sum() + bad_sums[:, 1].sum()) / (good_n[:, 0].sum()
                                                           + bad_n[:, 1].sum()).clamp(min=1)
    mean_good = good_sums / good_n.clamp(min=1)  # log p per token
    mean_bad = bad_sums / bad_n.clamp(min=1)
    logits = torch.cat([torch.stack([mean_good[:, 0], mean_bad[:, 0]], -1),
                        torch.stack([mean_good[:, 1], mean_bad[:, 1]], -1)])
    target = torch.cat([torch.zeros(len(good_sums)), torch.ones(len(good_sums))]).long().to(
        logits.device)
    contrast = F.cross_entropy(logits, target, label_smoothing=eps)
    right = (logits.argmax(-1) == target).float().mean()
    return ce + weight * contrast, {"ce": ce.detach(), "contrast": contrast.detach(),
                                    "instruction_accuracy": right}


def representation_loss(hidden: list[torch.Tensor], base: list[torch.Tensor],
                        good: list[torch.Tensor], bad: list[torch.Tensor], alpha: float
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """RAHF step 2 over per-layer [tokens, H] hidden states: the mean L2 distance between
    the trained model's states and base + alpha * (good - bad), averaged over layers.
    Stats: the mean norm of the target shift, and the distance as a share of it (1 at
    the start, when the adapters are zero)."""
    dist, shift = [], []
    for h, b, g, n in zip(hidden, base, good, bad, strict=True):
        v = alpha * (g - n)
        dist.append((h - (b + v)).norm(dim=-1).mean())
        shift.append(v.norm(dim=-1).mean())
    loss = torch.stack(dist).mean()
    target = torch.stack(shift).mean()
    return loss, {"target_shift": target, "distance_ratio": loss.detach() / target.clamp(min=1e-12)}
