"""Built-in demo preference data with known truth, from real human conversations.

Source: the ``chitchat-dataset`` registry package (MIT; 7,168 English open-domain
conversations). Each pair takes a point in a conversation: the prompt is the
conversation so far (the last ``max_turns`` turns), chosen is the real next
message, rejected is either a message from another conversation
(``negatives="other"``) or, harder, a later message by the same speaker in the
same conversation (``negatives="later"``). Then a seeded fraction of pairs has
its replies swapped and ``meta.flipped = true``: every later stage can measure
how well it finds these label errors.
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from typing import Any, Literal

from preflab.data.pair import Message, PreferencePair

Negatives = Literal["other", "later"]
INSTALL = "pip install chitchat-dataset==0.9.0   (or: make models)"


def load_conversations() -> dict[str, list[str]]:
    """Conversations of the chitchat dataset as lists of turns (a speaker's run of messages)."""
    spec = importlib.util.find_spec("chitchat_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"demo data needs the package chitchat-dataset: {INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / "dataset.json"
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    conversations = {}
    for cid, conv in raw.items():
        turns = [" ".join(u["text"].strip() for u in group if u["text"].strip())
                 for group in conv["messages"]]
        turns = [t for t in turns if t]
        if len(turns) >= 2:
            conversations[cid] = turns
    return conversations


def _context(turns: list[str], t: int, max_turns: int) -> list[Message]:
    """Turns before t, the speaker of turn t as the assistant."""
    start = max(0, t - max_turns)
    return [{"role": "assistant" if (t - i) % 2 == 0 else "user", "content": turns[i]}
            for i in range(start, t)]


def demo_pairs(n: int = 2000, flip_rate: float = 0.25, seed: int = 0,
                     negatives: Negatives = "other", max_turns: int = 6) -> list[PreferencePair]:
    """Build `n` demo pairs, `round(n * flip_rate)` of them flipped (seeded)."""
    if n < 1 or max_turns < 1:
        raise ValueError(f"n and max_turns must be at least 1, got n={n}, max_turns={max_turns}")
    if not 0 <= flip_rate <= 1:
        raise ValueError(f"flip_rate must be in [0, 1], got {flip_rate}")
    if negatives not in ("other", "later"):
        raise ValueError(f"negatives must be 'other' or 'later', got {negatives!r}")
    rng = random.Random(seed)
    conversations = load_conversations()
    ids = sorted(conversations)
    # Cut points: turn t is the reply (t >= 1, so there is context). For 'later'
    # negatives a turn of the same speaker must follow (t + 2, t + 4, ...).
    def later(turns: list[str], t: int) -> list[int]:
        return [k for k in range(t + 2, len(turns), 2) if turns[k] != turns[t]]

    cuts = {cid: [t for t in range(1, len(conversations[cid]))
                  if negatives == "other" or later(conversations[cid], t)] for cid in ids}
    cuts = {cid: ts for cid, ts in cuts.items() if ts}
    capacity = sum(len(ts) for ts in cuts.values())
    if n > capacity:
        raise ValueError(f"the demo source has {capacity} usable points, fewer than n={n}")
    # Spread pairs over conversations: one cut per conversation per round.
    order = sorted(cuts)
    rng.shuffle(order)
    for ts in cuts.values():
        rng.shuffle(ts)
    chosen_points: list[tuple[str, int]] = []
    round_ = 0
    while len(chosen_points) < n:
        for cid in order:
            if round_ < len(cuts[cid]):
                chosen_points.append((cid, cuts[cid][round_]))
                if len(chosen_points) == n:
                    break
        round_ += 1
    flipped = set(rng.sample(range(n), round(n * flip_rate)))
    pairs = []
    for i, (cid, t) in enumerate(chosen_points):
        turns = conversations[cid]
        reply = turns[t]
        if negatives == "later":
            k = rng.choice(later(turns, t))
            negative, other = turns[k], cid
        else:
            while True:  # a reply from another conversation, never the same text
                other = rng.choice(ids)
                k = rng.randrange(1, len(conversations[other]))
                negative = conversations[other][k]
                if other != cid and negative != reply:
                    break
        pair = PreferencePair(
            prompt=_context(turns, t, max_turns), chosen=reply, rejected=negative,
            subset=f"chitchat-{negatives}",
            meta={"source": "chitchat-dataset", "conversation": cid, "turn": t,
                  "negative": {"conversation": other, "turn": k}, "flipped": i in flipped},
        )
        pairs.append(pair.swapped(p_chosen=1.0) if i in flipped else pair)
    return pairs


def demo(out: str | Path, n: int = 2000, flip_rate: float = 0.25, seed: int = 0,
         negatives: Negatives = "other", max_turns: int = 6,
         overwrite: bool = False) -> dict[str, Any]:
    """Build demo pairs and write them to `out` (format from its extension); an
    existing `out` is refused unless `overwrite` (:func:`demo_pairs` gives them
    in memory)."""
    from preflab.data.outputs import check_output_file
    from preflab.data.write import write_pairs

    check_output_file(out, overwrite)
    pairs = demo_pairs(n, flip_rate, seed, negatives, max_turns)
    write_pairs(pairs, out)
    n_flipped = sum(p.meta["flipped"] for p in pairs)
    return {"out": str(out), "n_pairs": len(pairs), "n_flipped": n_flipped,
            "flip_rate": flip_rate, "seed": seed, "negatives": negatives}
