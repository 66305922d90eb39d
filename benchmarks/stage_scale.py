"""Every stage at two sizes: wall time, pairs/s and peak memory from the smaller to the
larger, and whether memory stays flat (issue 36's targets).

Stages, each the `preflab` command as a process of its own (started from a fresh small
child, `child.in_child`, so that it does not start with this process's memory as its
peak); its wall time includes starting Python, its peak resident memory is read from
the kernel when it ends (`os.wait4`):

- ``inspect`` (``--tokenizer none``: whitespace words, the library's default);
- ``convert`` to Parquet (``preflab convert DATA OUT.parquet``);
- ``split --test-fraction 0.2``;
- ``audit --committee tiny`` with a warm score cache;
- ``clean --method sac`` on that audit;
- ``label --judge tiny-llama`` (every pair) with a warm score cache;
- ``review init --sample 200 --strata bin`` on that audit (three reviewers).

Data: the distinct pairs of `--data`, or `--base` demo pairs (``demo_pairs(base,
flip_rate=0.1, seed=0)``), repeated to each size and written as JSON Lines from a
generator. A pair's id is a hash of its texts, so to give every repeat its own id the
k-th repeat (k >= 1) of a pair has " (repeat k)" appended to its last prompt message
(to its chosen reply when the prompt is empty); the first copy is the pair itself.

Cache: the audit and label caches are warmed once on the distinct pairs (not timed).
The scoring stages (audit, label) run with ``preflab.data.messages.text_hash``, the
hash of every scoring unit's cache key, reading a text without that marker: a repeat's
units then have its original's keys, so the warm cache serves them and no model runs
in a timed stage (``computed`` in each row counts what was scored; it should be 0).
The engine therefore scores (and deduplicates) only the distinct texts, as for exact
copies; everything else (reading, per-pair tables, ids, grouping, writing) sees
`size` distinct pairs. The data stages and clean and review init run unchanged.

Printed: per stage and size (stderr as each is known, then a table on stdout) wall
seconds, pairs/s, peak RSS in MiB and the size of what the stage wrote; per stage the
ratios from the smallest size to the largest, checked against the targets (peak RSS
at most 1.5x, pairs/s at least 0.8x). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child import in_child

STAGES = ("inspect", "convert", "split", "audit", "clean", "review", "label")  # label last
NEEDS_AUDIT = ("clean", "review")
SCORING = ("audit", "label")
MAX_RSS_RATIO, MIN_SPEED_RATIO = 1.5, 0.8
MARK = re.compile(r" \(repeat \d+\)$")
COMMAND = "--run-command"  # internal: this file runs one preflab command (run_command)


def machine() -> dict[str, Any]:
    """The CPU: model, AVX-512 and bf16 instructions, threads."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    names = [line.split(":", 1)[1].strip() for line in info.splitlines()
             if line.startswith("model name")]
    return {"cpu": names[0] if names else "unknown", "avx512": "avx512f" in info,
            "bf16": "avx512_bf16" in info or "amx_bf16" in info, "threads": os.cpu_count()}


def base_pairs(args: argparse.Namespace) -> list[Any]:
    """The distinct pairs to repeat: those of `--data` (first of each id), or demo pairs."""
    if not args.data:
        from preflab.data.demo import demo_pairs

        return demo_pairs(args.base, flip_rate=0.1, seed=0)
    from preflab.data.read import iter_pairs, read_pairs

    seen: dict[str, Any] = {}
    for pair in iter_pairs(read_pairs(args.data).pairs):
        seen.setdefault(pair.id, pair)
    return list(seen.values())


def repeat(pair: Any, k: int) -> Any:
    """The k-th repeat of `pair`: " (repeat k)" after its last prompt message (or its
    chosen reply), so its content hash, the id, is its own; k = 0 is the pair itself."""
    if k == 0:
        return pair
    mark = f" (repeat {k})"
    if not pair.prompt:
        return dataclasses.replace(pair, chosen=pair.chosen + mark, id="",
                                   flags=list(pair.flags))
    prompt = [dict(m) for m in pair.prompt]
    prompt[-1]["content"] += mark
    return dataclasses.replace(pair, prompt=prompt, id="", flags=list(pair.flags))


def repeated(pairs: list[Any], n: int) -> Iterator[Any]:
    """`n` pairs: `pairs` in order, again and again, each repeat marked."""
    for i in range(n):
        k, j = divmod(i, len(pairs))
        yield repeat(pairs[j], k)


def _unmarked(part: Any) -> Any:
    if isinstance(part, str):
        return MARK.sub("", part) if part.endswith(")") else part
    if isinstance(part, list | tuple):
        return type(part)(_unmarked(p) for p in part)
    return part


def key_repeats_as_originals() -> None:
    """Make every scoring unit's cache key ignore the repeat marker (see the top)."""
    import preflab.data.messages as messages

    original = getattr(messages, "text_hash", None)
    if original is None:
        raise RuntimeError("preflab.data.messages.text_hash, the scoring units' key, is gone: "
                           "key_repeats_as_originals needs the new place")

    def text_hash(*parts: Any) -> str:
        return original(*(_unmarked(p) for p in parts))

    messages.text_hash = text_hash
    for name, module in list(sys.modules.items()):  # modules that imported it already
        if name.startswith("preflab") and getattr(module, "text_hash", None) is original:
            module.text_hash = text_hash


def run_command(argv: list[str], log: str, env: dict[str, str], scoring: bool
                ) -> dict[str, Any]:
    """`preflab *argv` as a process of its own, stdout to LOG.out and stderr to LOG.log:
    its wall seconds, exit status and peak resident memory (MiB).

    Run from a small child (`in_child`): a new process starts with the resident memory
    of the process it is made from as its peak, so started from this benchmark, which
    holds the pairs, it would show that instead of its own."""
    mode = "keyed" if scoring else "plain"
    cmd = [sys.executable, str(Path(__file__).resolve()), COMMAND, mode, *argv]
    started = time.perf_counter()
    with open(f"{log}.out", "wb") as out, open(f"{log}.log", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **env})
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": time.perf_counter() - started, "exit": proc.returncode,
            "peak_rss_mib": usage.ru_maxrss / 1024}  # KiB -> MiB


def command_main(args: list[str]) -> None:
    """The `preflab` command, run by `run_command` (the repeat marker kept out of the
    cache keys when the first argument is ``keyed``)."""
    if args[0] == "keyed":
        key_repeats_as_originals()
    sys.argv = ["preflab", *args[1:]]
    runpy.run_module("preflab", run_name="__main__", alter_sys=True)


def last_json(path: Path) -> dict[str, Any]:
    """The last line of a command's stdout that is a JSON object ({} if none)."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return {}


def size_mib(paths: list[Path]) -> float:
    """Bytes under `paths` (files, or folders walked), in MiB."""
    total = 0
    for path in paths:
        files = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        total += sum(f.stat().st_size for f in files if f.is_file())
    return round(total / 2**20, 2)


@dataclasses.dataclass
class Run:
    """Where one benchmark run works and what it runs with."""

    work: Path
    committee: str
    judge: str

    @property
    def audit_cache(self) -> Path:
        return self.work / "audit-cache.sqlite"

    @property
    def label_env(self) -> dict[str, str]:
        return {"PREFLAB_CACHE": str(self.work / "label-cache")}  # label's scores.sqlite


def command(run: Run, stage: str, data: Path, tag: str) -> tuple[list[str], list[Path]]:
    """The arguments of `stage` on `data` and what it writes (`tag` names the outputs)."""
    out, audit = run.work / f"{stage}-{tag}", run.work / f"audit-{tag}"
    if stage == "inspect":
        return ["inspect", str(data), "--tokenizer", "none", "--json"], []
    if stage == "convert":
        dst = out.with_suffix(".parquet")
        return ["convert", str(data), str(dst), "--overwrite"], [dst]
    if stage == "split":
        return ["split", str(data), "--test-fraction", "0.2", "--out", str(out),
                "--overwrite"], [out]
    if stage == "audit":
        return ["audit", str(data), "--committee", run.committee, "--cache",
                str(run.audit_cache), "--out", str(out), "--overwrite", "--json"], [out]
    if stage == "clean":
        return ["clean", str(data), "--audit", str(audit), "--method", "sac", "--out",
                str(out), "--overwrite", "--json"], [out]
    if stage == "label":
        return ["label", str(data), "--judge", run.judge, "--out", str(out), "--overwrite",
                "--json"], [out]
    db = out.with_suffix(".sqlite")
    for old in run.work.glob(f"{db.name}*"):  # review init refuses an existing project
        old.unlink()
    return ["review", "init", str(data), "--audit", str(audit), "--db", str(db), "--sample",
            "200", "--strata", "bin", "--reviewers", "r1,r2,r3", "--json"], [
                db, *(Path(f"{db}{end}") for end in ("-wal", "-shm", ".config.toml"))]


def computed(stage: str, summary: dict[str, Any]) -> int | None:
    """Units a scoring stage computed rather than read from the cache."""
    if stage == "audit":
        return sum(int(r.get("computed", 0)) for r in summary.get("member_runs", {}).values())
    if stage == "label":
        return summary.get("computed")
    return None


def run_stage(run: Run, stage: str, data: Path, tag: str) -> dict[str, Any]:
    """One stage in a fresh child: seconds, peak RSS (MiB), output size, summary."""
    argv, outputs = command(run, stage, data, tag)
    log = run.work / "logs" / f"{stage}-{tag}"
    log.parent.mkdir(exist_ok=True)
    env = run.label_env if stage == "label" else {}
    info, _ = in_child(run_command, argv, str(log), env, stage in SCORING)
    if info["exit"] != 0:
        tail = Path(f"{log}.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"preflab {' '.join(argv)} exited {info['exit']}: "
                           + " | ".join(tail))
    return {"seconds": round(info["seconds"], 2), "peak_rss_mib": round(info["peak_rss_mib"]),
            "output_mib": size_mib(outputs),
            "summary": last_json(Path(f"{log}.out"))}


def measure(run: Run, stage: str, data: Path, n: int) -> dict[str, Any]:
    """The row of `stage` at `n` pairs (an `error` instead of figures when it failed)."""
    try:
        got = run_stage(run, stage, data, str(n))
    except Exception as e:  # a crash or a kill (out of memory) is a result too
        return {"stage": stage, "pairs": n, "error": str(e)[:2000]}
    row = {"stage": stage, "pairs": n, "seconds": got["seconds"],
           "pairs_per_s": round(n / max(got["seconds"], 1e-9), 1),
           "peak_rss_mib": got["peak_rss_mib"], "output_mib": got["output_mib"]}
    done = computed(stage, got["summary"])
    return row if done is None else {**row, "computed": done}


def warm_up(run: Run, stages: list[str], pairs: list[Any]) -> None:
    """Score the distinct pairs once into the audit and label caches (not timed)."""
    from preflab.data.write import write_pairs

    if not set(stages) & set(SCORING):
        return
    distinct = run.work / "distinct.jsonl"
    write_pairs(iter(pairs), distinct)
    for stage in (s for s in SCORING if s in stages):
        got = run_stage(run, stage, distinct, "warm-up")
        print(f"{stage} cache warmed on {len(pairs)} pairs in {got['seconds']} s",
              file=sys.stderr)


def scaling(rows: list[dict[str, Any]], stages: list[str]) -> dict[str, Any]:
    """Per stage: smallest to largest size, the ratios and the verdict on the targets."""
    result = {}
    for stage in stages:
        mine = sorted((r for r in rows if r["stage"] == stage), key=lambda r: r["pairs"])
        if len(mine) < 2:
            continue
        small, big = mine[0], mine[-1]
        if "error" in small or "error" in big:
            result[stage] = {"sizes": [small["pairs"], big["pairs"]], "passed": False,
                             "error": "a run failed"}
            continue
        rss = round(big["peak_rss_mib"] / small["peak_rss_mib"], 3)
        speed = round(big["pairs_per_s"] / small["pairs_per_s"], 3)
        result[stage] = {"sizes": [small["pairs"], big["pairs"]], "peak_rss_ratio": rss,
                         "pairs_per_s_ratio": speed,
                         "passed": rss <= MAX_RSS_RATIO and speed >= MIN_SPEED_RATIO}
    return result


def show(row: dict[str, Any]) -> str:
    """One row as a line of text."""
    head = f"{row['stage']:<8} {row['pairs']:>9,}"
    if "error" in row:
        return f"{head}  FAILED: {row['error'][:300]}"
    extra = f"  computed {row['computed']}" if "computed" in row else ""
    return (f"{head} {row['seconds']:>9.1f} s {row['pairs_per_s']:>10,.0f} pairs/s "
            f"{row['peak_rss_mib']:>7,} MiB peak {row['output_mib']:>9,.2f} MiB out{extra}")


def report(rows: list[dict[str, Any]], ratios: dict[str, Any]) -> None:
    """The table and the verdicts, on stdout."""
    print(f"{'stage':<8} {'pairs':>9} {'seconds':>11} {'pairs/s':>18} {'peak RSS':>12} "
          f"{'output':>13}")
    for row in rows:
        print(show(row))
    for stage, r in ratios.items():
        if "error" in r:
            print(f"{stage:<8} {r['sizes'][0]:,} -> {r['sizes'][1]:,}: FAIL ({r['error']})")
            continue
        print(f"{stage:<8} {r['sizes'][0]:,} -> {r['sizes'][1]:,}: peak RSS "
              f"{r['peak_rss_ratio']:.2f}x (<= {MAX_RSS_RATIO}), pairs/s "
              f"{r['pairs_per_s_ratio']:.2f}x (>= {MIN_SPEED_RATIO}): "
              f"{'pass' if r['passed'] else 'FAIL'}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000",
                        help="Comma-separated numbers of pairs.")
    parser.add_argument("--pairs", type=int, default=None, help="One size (as --sizes N).")
    parser.add_argument("--data", default=None,
                        help="Repeat this file's distinct pairs (default: demo pairs).")
    parser.add_argument("--base", type=int, default=500,
                        help="Distinct demo pairs to build when --data is not given.")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"Comma-separated subset of {','.join(STAGES)} (clean and "
                             "review run the audit too).")
    parser.add_argument("--committee", default="tiny", help="The audit's committee.")
    parser.add_argument("--judge", default="tiny-llama", help="label's judge.")
    parser.add_argument("--out", default=None,
                        help="Work folder, kept (default: a temp dir, removed at the end); "
                        "a folder of an earlier run gives its data files and audits to "
                        "this one, so one stage can be measured again.")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sizes = [args.pairs] if args.pairs else [int(s) for s in args.sizes.split(",")]
    chosen = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(STAGES))
    if unknown:
        sys.exit(f"unknown stage(s) {unknown}; choose from {','.join(STAGES)}")
    work = Path(args.out or tempfile.mkdtemp(prefix="stage-scale-"))
    kept = all((work / f"audit-{n}" / "audit.parquet").is_file() for n in sizes)
    if set(chosen) & set(NEEDS_AUDIT) and "audit" not in chosen and not kept:
        chosen.append("audit")  # (an --out folder that holds each size's audit: reused)
    stages = [s for s in STAGES if s in chosen]
    work.mkdir(parents=True, exist_ok=True)
    run = Run(work, args.committee, args.judge)
    pairs = base_pairs(args)
    info = machine()
    print(f"{len(pairs)} distinct pairs; sizes {sizes}; stages {stages}; work {work}; "
          f"{info}", file=sys.stderr)
    warm_up(run, stages, pairs)
    from preflab.data.write import write_pairs

    rows = []
    for n in sizes:
        data = work / f"pairs-{n}.jsonl"
        if not data.is_file():  # an --out folder keeps the data of an earlier run
            started = time.perf_counter()
            write_pairs(repeated(pairs, n), data)
            print(f"{n:,} pairs written in {time.perf_counter() - started:.1f} s "
                  f"({size_mib([data]):,.1f} MiB)", file=sys.stderr)
        for stage in stages:
            rows.append(measure(run, stage, data, n))
            print(show(rows[-1]), file=sys.stderr, flush=True)
    ratios = scaling(rows, stages)
    report(rows, ratios)
    print(json.dumps({"machine": info, "distinct_pairs": len(pairs),
                      "data": args.data or f"demo pairs (base {args.base})",
                      "committee": args.committee, "judge": args.judge, "sizes": sizes,
                      "runs": rows, "scaling": ratios,
                      "targets": {"peak_rss_ratio_max": MAX_RSS_RATIO,
                                  "pairs_per_s_ratio_min": MIN_SPEED_RATIO},
                      "passed": bool(ratios) and all(r["passed"] for r in ratios.values())}))
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == [COMMAND]:
        command_main(sys.argv[2:])
    else:
        main()
