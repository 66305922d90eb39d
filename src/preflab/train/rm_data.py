"""Pairs -> tokenized reward-model examples, with the checks that keep training honest.

A pair becomes the ids of (context, chosen) and (rejected context, rejected), built by
:func:`preflab.engine.reward.reward_input` so training and scoring read the same
tokens, plus its soft label, weight and margin. Anything that would train silently
wrong stops here with the file, pair and field to fix.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from preflab.data.messages import as_messages
from preflab.data.pair import PreferencePair
from preflab.engine.reward import reward_input
from preflab.errors import PairError
from preflab.models.forward import split_shared_prefix
from preflab.models.logps import collate_continuations
from preflab.models.text_pair import token_types

Labels = Literal["auto", "hard", "soft"]


@dataclass
class RewardExample:
    id: str
    chosen_ids: list[int]
    rejected_ids: list[int]
    p_chosen: float
    weight: float
    margin: float
    subset: str | None


@dataclass
class BuildReport:
    """What tokenization did to the data (written into the training summary)."""

    n_pairs: int = 0
    labels: str = "hard"
    context_truncated: int = 0  # replies whose context lost its oldest tokens
    reply_truncated: int = 0  # replies longer than max_length on their own, cut
    max_tokens: int = 0
    mean_tokens: float = 0.0
    subsets: dict[str, int] = field(default_factory=dict)


def _number(pair: PreferencePair, key: str, default: float, where: tuple[str, int]) -> float:
    value = pair.meta.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PairError(where[0], where[1], f"meta.{key}",
                        f"must be a finite number, got {value!r}", unit="pair")
    return float(value)


def build_examples(pairs: list[PreferencePair], tokenizer: Any, encoder: bool,
                   max_length: int, labels: Labels = "auto", source: str = "<pairs>",
                   subset_weights: dict[str, float] | None = None,
                   weight_key: str = "weight", margin: float = 0.0,
                   margin_key: str = "margin") -> tuple[list[RewardExample], BuildReport]:
    """Tokenize pairs for reward-model training.

    Args:
        labels: ``hard`` trains Bradley-Terry on chosen > rejected; ``soft`` trains on
            ``p_chosen`` (e.g. an AI labeler's probability); ``auto`` is soft when any
            pair's p_chosen is not 1.
        subset_weights: loss weight per subset (``{"harmless-base": 0.5}`` is
            L = L_help + 0.5 L_harm); subsets not named weigh 1.
        weight_key / margin_key: per-pair weight and margin read from ``meta``
            (default 1 and `margin`).

    Raises:
        PairError: chosen and rejected that become identical after truncation, a weight or
            margin that is not a finite number, soft labels that are all hard, or
            hard labels on pairs that carry soft ones.
    """
    if labels not in ("auto", "hard", "soft"):
        raise ValueError(f"labels must be 'auto', 'hard' or 'soft', got {labels!r}")
    if not pairs:
        raise ValueError(f"{source}: no pairs to train on")
    labels = resolve_labels(pairs, labels)
    _check_label_column(pairs, labels, source)
    subset_weights = subset_weights or {}
    unknown = set(subset_weights) - {p.subset for p in pairs}
    if unknown:
        raise ValueError(f"--subset-weight names subsets not in {source}: "
                         f"{', '.join(sorted(unknown))} (present: "
                         f"{', '.join(sorted({str(p.subset) for p in pairs}))})")
    report = BuildReport(n_pairs=len(pairs), labels=labels)
    examples, lengths = [], []
    for i, pair in enumerate(pairs):
        where = (source, i + 1)
        sides = {}
        for name, context, reply in (("chosen", pair.prompt, pair.chosen),
                                     ("rejected", pair.rejected_context, pair.rejected)):
            x = reward_input(tokenizer, encoder, as_messages(context), reply, max_length)
            report.reply_truncated += bool(x.reply_cut)
            report.context_truncated += bool(x.context_cut)
            sides[name] = x.ids
            lengths.append(len(x.ids))
        if sides["chosen"] == sides["rejected"]:
            raise PairError(source, i + 1, "rejected",
                            f"chosen and rejected read the same {len(sides['chosen'])} tokens "
                            f"(pair id {pair.id}): the model could not tell them apart",
                            unit="pair")
        weight = _number(pair, weight_key, 1.0, where) * subset_weights.get(pair.subset or "",
                                                                           1.0)
        if weight < 0:
            raise PairError(source, i + 1, f"meta.{weight_key}", f"is negative ({weight})",
                            unit="pair")
        examples.append(RewardExample(
            id=pair.id, chosen_ids=sides["chosen"], rejected_ids=sides["rejected"],
            p_chosen=pair.p_chosen if labels == "soft" else 1.0, weight=weight,
            margin=_number(pair, margin_key, margin, where), subset=pair.subset))
    report.max_tokens = max(lengths)
    report.mean_tokens = round(sum(lengths) / len(lengths), 1)
    report.subsets = dict(Counter(str(p.subset) for p in pairs))
    return examples, report


def resolve_labels(pairs: list[PreferencePair], labels: Labels) -> Labels:
    """``auto`` -> ``soft`` when some p_chosen is not 1, else ``hard``."""
    if labels != "auto":
        return labels
    return "soft" if any(p.p_chosen != 1.0 for p in pairs) else "hard"


def _check_label_column(pairs: list[PreferencePair], labels: Labels, source: str) -> None:
    soft = [i for i, p in enumerate(pairs) if p.p_chosen != 1.0]
    if labels == "soft" and not soft:
        raise ValueError(f"{source}: --labels soft, but every p_chosen is 1.0 (hard labels); "
                         "pass data with soft labels (e.g. preflab label --write-data's "
                         "labelled.jsonl) or use --labels hard")
    if labels == "hard" and soft:
        i = soft[0]
        raise PairError(source, i + 1, "p_chosen",
                        f"is {pairs[i].p_chosen} ({len(soft)} pairs carry soft labels): "
                        "--labels hard would train them as certain; use --labels soft",
                        unit="pair")


class PairCollator:
    """Pads a batch of examples into one tensor: B chosen rows, then B rejected rows
    (with segment ids when `sep_id` is given, as the scorer adds them).

    With `share_prefix` (decoders) each pair's tokens are split into the prefix both
    sides start with (the prompt) and the two replies after it, as
    :func:`preflab.models.logps.collate_continuations` lays them out (left-padded
    prefixes; chosen, rejected of pair 0, then pair 1...), with a loss mask at each
    reply's last token, where the reward is read. A batch in which some pair shares
    no token falls back to whole rows."""

    def __init__(self, pad_id: int, sep_id: int | None = None,
                 share_prefix: bool = False) -> None:
        self.pad_id = pad_id
        self.sep_id = sep_id
        self.share_prefix = share_prefix

    def __call__(self, batch: list[RewardExample]) -> dict[str, torch.Tensor]:
        labels = {
            "p_chosen": torch.tensor([e.p_chosen for e in batch], dtype=torch.float32),
            "weight": torch.tensor([e.weight for e in batch], dtype=torch.float32),
            "margin": torch.tensor([e.margin for e in batch], dtype=torch.float32),
        }
        if self.share_prefix:
            shared = shared_layout(batch, self.pad_id)
            if shared is not None:
                return {**shared, **labels}
        seqs = [e.chosen_ids for e in batch] + [e.rejected_ids for e in batch]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, s in enumerate(seqs):
            ids[j, :len(s)] = torch.tensor(s)
            mask[j, :len(s)] = 1
        extra = {} if self.sep_id is None else {"token_type_ids": token_types(ids, self.sep_id)}
        return {"input_ids": ids, "attention_mask": mask, **extra, **labels}


def shared_layout(batch: list[RewardExample], pad_id: int) -> dict[str, torch.Tensor] | None:
    """Prefix/continuation tensors of a batch (see :class:`PairCollator`), or None when
    a pair's two sequences share no first token."""
    prefixes, sides = [], []
    for e in batch:
        prefix, (chosen, rejected) = split_shared_prefix([e.chosen_ids, e.rejected_ids])
        if not prefix:
            return None
        prefixes.append(prefix)
        sides += [(chosen, 1), (rejected, 1)]
    return collate_continuations(prefixes, sides, pad_id)
