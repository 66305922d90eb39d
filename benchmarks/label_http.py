"""The HTTP judge against the local one: `preflab serve MODEL` started here, the same
pairs labelled through it and in-process, side by side in one run.

Last line: JSON with max_abs_diff (largest |p_ai http - p_ai local|), n_failed,
both backends' pairs/s and their alignment.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from preflab.engine import EngineOptions
from preflab.label.label_pairs import label

DEFAULT_DATA = (Path(__file__).resolve().parents[2]
                / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--judge", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="harmless")
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    proc = subprocess.Popen([sys.executable, "-m", "preflab.cli", "serve", args.judge,
                             "--port", "0", "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if "serving" not in line:
            raise SystemExit(f"preflab serve did not start: {line!r}")
        url = line.split(" at ")[1].strip()
        out = Path(tempfile.mkdtemp())
        options = EngineOptions(cache_path=":memory:")
        common = dict(task=args.task, limit=args.pairs, shots=args.shots, seed=args.seed,
                      engine_options=options)
        started = time.perf_counter()
        local = label(args.data, judge=args.judge, out=out / "local", **common).summary
        local_s = time.perf_counter() - started
        started = time.perf_counter()
        remote = label(args.data, judge=url, out=out / "http", **common).summary
        http_s = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    a = pd.read_parquet(out / "local" / "labels.parquet")
    b = pd.read_parquet(out / "http" / "labels.parquet")
    print(json.dumps({
        "pairs": args.pairs, "judge": args.judge, "task": args.task, "shots": args.shots,
        "url": url, "n_failed": remote["n_failed"],
        "max_abs_diff": float(np.nanmax(np.abs(b["p_ai"] - a["p_ai"]))),
        "local_pairs_per_s": round(args.pairs / local_s, 3),
        "http_pairs_per_s": round(args.pairs / http_s, 3),
        "local_alignment": local.get("alignment"), "http_alignment": remote.get("alignment"),
    }))


if __name__ == "__main__":
    main()
