"""Audit throughput and peak memory as the data grows, and the local executor against
Ray actors on the same data, side by side in one run.

Per size and executor: wall seconds of the audit, pairs/s, peak resident memory of
the auditing process (a fresh child per run; with Ray, also each actor's peak) and
the size of what the audit wrote. Sizes beyond the distinct pairs of `--data` (or of
`--base` demo pairs built in-process) repeat those pairs: preflab's pair ids are
content hashes, so a repeat is an exact duplicate (counted as such, grouped into one
cross-fitting fold) whose texts the engine scores once.

Cache: with repeated data the score cache is warmed once with the distinct pairs
(not timed) and every run then reads it, so the sizes compare what grows with the
data (reading, units, cache look-ups, cross-fitting, the table, statistics, the
report), not model time that repeats would not cost. Without repeats (`--cache cold`,
the default then) every run starts from an empty cache of its own and computes all.
With several executors, each size is audited by each and their tables compared:
largest margin difference, votes and bins identical, throughput against local.

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child import in_child


def base_pairs(args: argparse.Namespace) -> list[Any]:
    """The distinct pairs to audit (and repeat): `--data`, or demo pairs built here."""
    if args.data:
        from preflab.data.read import iter_pairs, read_pairs

        return list(iter_pairs(read_pairs(args.data).pairs))
    from preflab.data.demo import demo_pairs

    return demo_pairs(args.base, flip_rate=0.1, seed=0)


def write_size(pairs: list[Any], n: int, path: Path) -> Path:
    """The first `n` pairs of `pairs` repeated as often as needed, as JSON Lines."""
    from preflab.data.write import write_pairs

    write_pairs((pairs[i % len(pairs)] for i in range(n)), path)
    return path


def run_audit(data: str, committee: str, out: str, cache: str, executor: str, actors: int,
              threads: int | None) -> dict[str, Any]:
    """One audit in this (child) process: its wall seconds and what it wrote."""
    from preflab.audit.audit_pairs import audit
    from preflab.engine import EngineOptions

    if threads:
        import torch

        torch.set_num_threads(threads)
    started = time.perf_counter()
    ray = {"actors": actors, "actor_cpus": 1.0} if executor == "ray" else {}
    summary = audit(data, out=out, committee=committee, engine_options=EngineOptions(
        cache_path=cache, progress=False), executor=executor, **ray)
    seconds = time.perf_counter() - started
    size = sum(f.stat().st_size for f in Path(out).iterdir() if f.is_file())
    return {"seconds": round(seconds, 2), "n_pairs": summary["n_pairs"],
            "output_mib": round(size / 2**20, 2),
            "executor_info": summary.get("executor_info", {})}


def compare(a: Path, b: Path) -> dict[str, Any]:
    """How far audit table `b` is from `a` (same pairs, same order)."""
    import numpy as np
    import pandas as pd

    ta, tb = pd.read_parquet(a / "audit.parquet"), pd.read_parquet(b / "audit.parquet")
    margins = [c for c in ta.columns if c.startswith("margin.")]
    votes = [*(c for c in ta.columns if c.startswith("vote.")), "votes"]
    diff = max(float(np.nanmax(np.abs(ta[c].to_numpy() - tb[c].to_numpy())))
               for c in margins)
    return {"max_abs_margin_diff": diff,
            "votes_identical": bool((ta[votes] == tb[votes]).all().all()),
            "bins_identical": bool((ta["bin"] == tb["bin"]).all()),
            "max_abs_p_chosen_diff": float(np.nanmax(np.abs(ta["p_chosen"] - tb["p_chosen"])))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="Pairs to audit (default: demo pairs).")
    parser.add_argument("--base", type=int, default=500,
                        help="Distinct demo pairs to build when --data is not given.")
    parser.add_argument("--sizes", default="2000,20000",
                        help="Comma-separated numbers of pairs to audit.")
    parser.add_argument("--pairs", type=int, default=None, help="One size (as --sizes N).")
    parser.add_argument("--committee", default="tiny")
    parser.add_argument("--executor", default="local", help="local, ray or local,ray.")
    parser.add_argument("--actors", default="2", help="Ray actors, e.g. 1,2.")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the local executor (default: torch's).")
    parser.add_argument("--cache", choices=("warm", "cold"), default=None,
                        help="warm: one cache warmed first; cold: each run computes. "
                             "[default: warm when sizes repeat the data]")
    parser.add_argument("--out", default=None, help="Keep outputs here (default: a temp dir).")
    args = parser.parse_args()
    sizes = [args.pairs] if args.pairs else [int(s) for s in args.sizes.split(",")]
    executors = args.executor.split(",")
    actors = [int(a) for a in args.actors.split(",")]
    runs = [("local", 0)] * ("local" in executors) + [("ray", a) for a in actors
                                                       if "ray" in executors]
    work = Path(args.out or tempfile.mkdtemp(prefix="audit-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    pairs = base_pairs(args)
    cache = args.cache or ("warm" if max(sizes) > len(pairs) else "cold")
    print(f"{len(pairs)} distinct pairs; sizes {sizes}; cache {cache}; runs {runs}",
          file=sys.stderr)
    warm = str(work / "warm.sqlite")
    if cache == "warm":
        distinct = write_size(pairs, len(pairs), work / "distinct.jsonl")
        info, _ = in_child(run_audit, str(distinct), args.committee, str(work / "warm-up"),
                           warm, "local", 1, args.threads)
        print(f"cache warmed in {info['seconds']} s", file=sys.stderr)
    rows, comparisons = [], []
    for n in sizes:
        data = write_size(pairs, n, work / f"pairs-{n}.jsonl")
        done: dict[str, Path] = {}
        for kind, k in runs:
            name = kind if kind == "local" else f"ray-{k}"
            out = work / f"audit-{n}-{name}"
            run_cache = warm if cache == "warm" else str(work / f"cache-{n}-{name}.sqlite")
            info, peak = in_child(run_audit, str(data), args.committee, str(out), run_cache,
                                  kind, max(k, 1), args.threads)
            row = {"pairs": n, "executor": name, "seconds": info["seconds"],
                   "pairs_per_s": round(n / info["seconds"], 1),
                   "peak_rss_mib": round(peak), "output_mib": info["output_mib"],
                   **({"actor_peak_rss_mib": info["executor_info"].get("actor_peak_rss_mib")}
                      if kind == "ray" else {})}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
            done[name] = out
        for name, out in done.items():
            if name != "local" and "local" in done:
                local_row = next(r for r in rows if r["pairs"] == n and r["executor"] == "local")
                this_row = next(r for r in rows if r["pairs"] == n and r["executor"] == name)
                comparisons.append({"pairs": n, "executor": name, **compare(done["local"], out),
                                    "throughput_vs_local": round(
                                        this_row["pairs_per_s"] / local_row["pairs_per_s"], 3)})
    result: dict[str, Any] = {"committee": args.committee, "cache": cache,
                              "distinct_pairs": len(pairs), "runs": rows,
                              "comparisons": comparisons}
    local = [r for r in rows if r["executor"] == "local"]
    if len(local) >= 2:
        small, big = local[0], local[-1]
        result["scaling"] = {
            "sizes": [small["pairs"], big["pairs"]],
            "peak_rss_ratio": round(big["peak_rss_mib"] / small["peak_rss_mib"], 3),
            "pairs_per_s_ratio": round(big["pairs_per_s"] / small["pairs_per_s"], 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
