"""Reward-model losses over the rewards of the two replies of each pair."""

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
