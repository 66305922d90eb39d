"""Cleaning methods against injected label flips, side by side in one run.

Thin wrapper over ``preflab bench noise`` with the benchmark conventions
(``--data``, ``--pairs``): the labels of DATA count as truth (recorded demo flips
are turned back first), a seeded fraction is flipped at each rate, the noisy data
is audited by the committee and every method (SAC and the twelve baseline
variants, ``random`` at SAC's budget) is measured against the injected flips.

Last line: JSON {rate: {method: {precision, recall, f1, kept_fraction,
residual_noise}}}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from preflab.clean.noise import bench_noise

DEFAULT_DATA = (Path(__file__).resolve().parents[2]
                / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz")
KEYS = ("precision", "recall", "f1", "kept_fraction", "residual_noise")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--pairs", type=int, default=None, help="first N pairs (default all)")
    parser.add_argument("--rate", default="0.1,0.25")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--committee", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench-noise")
    args = parser.parse_args()
    report = bench_noise(args.data, rates=[float(r) for r in args.rate.split(",")],
                         methods=args.methods, committee=args.committee, out=args.out,
                         seed=args.seed, limit=args.pairs)
    print(json.dumps({rate: {m: {k: row.get(k) for k in KEYS} if "error" not in row else row
                             for m, row in by.items()}
                      for rate, by in report["results"].items()}))


if __name__ == "__main__":
    main()
