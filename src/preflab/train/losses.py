"""Pairwise losses: reward models (rewards of the two replies) and the DPO family
(log-ratios of policy to reference)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


DPO_LOSSES = ("sigmoid", "cdpo", "robust", "ipo", "soft")


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
