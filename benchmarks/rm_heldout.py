"""Reward-model held-out accuracy: train on a seeded part of the pairs, evaluate on the
rest, against the zero-shot MiniLM context-reply cosine on the same held-out pairs.

`--train-data FILE` trains on another file instead (e.g. the labeler's labelled.jsonl
of the training part, for soft labels); pairs of the held-out part found in it are an
error. Last line: JSON with accuracy, ece, log_loss, baseline_cosine_accuracy, n_train,
n_test, train_seconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from preflab.committee.members import score_embed_rm
from preflab.committee.spec import MemberSpec
from preflab.data.read import iter_pairs, load_pairs
from preflab.data.sample import sample_pairs
from preflab.data.split import split_pairs
from preflab.data.write import write_pairs
from preflab.engine import Engine, EngineOptions
from preflab.eval.metrics import pairwise_accuracy
from preflab.eval.reward_model import eval_rm
from preflab.train.config import RewardConfig
from preflab.train.reward_model import train_rm

DEFAULT_DATA = (Path(__file__).resolve().parents[2]
                / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--pairs", type=int, default=None, help="seeded sample (default all)")
    parser.add_argument("--test-fraction", type=float, default=0.5)
    parser.add_argument("--train-limit", type=int, default=None,
                        help="train on a seeded sample of this many training pairs")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="evaluate on a seeded sample of this many held-out pairs")
    parser.add_argument("--train-data", default=None)
    parser.add_argument("--base", default="minilm-l6")
    parser.add_argument("--labels", default="auto")
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--train-layers", type=int, default=None)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--head", default="auto", help="encoders: auto, cls or bi-encoder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/rm-heldout")
    args = parser.parse_args()

    out = Path(args.out)
    pairs = sample_pairs(list(iter_pairs(load_pairs(args.data))), args.pairs, args.seed)
    train, test = split_pairs(pairs, args.test_fraction, args.seed)
    if args.train_data:
        train = list(iter_pairs(load_pairs(args.train_data)))
        leaked = {p.id for p in train} & {p.id for p in test}
        if leaked:
            raise SystemExit(f"{args.train_data}: {len(leaked)} pairs are held-out pairs")
    train = sample_pairs(train, args.train_limit, args.seed)
    test = sample_pairs(test, args.test_limit, args.seed)
    write_pairs(train, out / "train.jsonl")
    write_pairs(test, out / "test.jsonl")
    given = {"epochs": args.epochs, "learning_rate": args.lr, "max_length": args.max_length,
             "train_layers": args.train_layers}
    config = RewardConfig(base=args.base, labels=args.labels, lora=args.lora, seed=args.seed,
                          head=args.head,
                          **{k: v for k, v in given.items() if v is not None})
    trained = train_rm(out / "train.jsonl", out / "model", config)
    summary = eval_rm(out / "model", out / "test.jsonl", out=out / "eval")
    cosine = score_embed_rm(MemberSpec("minilm-cosine", "embed-rm", {"model": "minilm-l6"}),
                            test, Engine(EngineOptions()))
    sign = np.where([p.p_chosen >= 0.5 for p in test], 1.0, -1.0)
    print(json.dumps({
        "data": args.data, "base": args.base, "labels": trained["stages"][-1]["labels"],
        "head": trained["stages"][-1]["head"],
        "n_train": len(train), "n_test": len(test), "accuracy": summary["accuracy"],
        "ece": summary["ece"], "log_loss": summary["log_loss"],
        "per_subset": {k: v["accuracy"] for k, v in summary["per_subset"].items()},
        "baseline_cosine_accuracy": round(pairwise_accuracy(cosine.margin * sign), 4),
        "train_seconds": trained["stages"][-1]["seconds"], "config": trained["config"],
    }, default=str))


if __name__ == "__main__":
    main()
