"""``preflab bench noise``: inject label flips, audit, clean with every method, score.

The truth is the data's labels as given, except pairs that record a flip
(``meta.flipped``, as the demo data does): those are first turned back, so the
injected rate is the whole noise. At each rate a seeded random set of pairs is
flipped (``meta.flipped = true``; the ids are in ``injected.json``), the noisy
data is audited (scores come from the engine's cache where the texts were seen
before: both orders of every judge comparison are scored, so a flip costs no new
judge call), and every method's decisions are measured against the injected flips.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.view import AuditView
from preflab.clean.config import NoiseBenchConfig
from preflab.clean.methods import VARIANTS, run_method
from preflab.clean.metrics import detection_metrics, says_wrong
from preflab.data.pair import PreferencePair
from preflab.data.read import iter_pairs, read_pairs
from preflab.data.write import write_pairs
from preflab.settings import resolve_config, write_config

FLIPPING_SAC = ("sac", "sac-soft", "sac-keep")  # SAC variants that flip mis-labels


def restore_truth(pairs: Sequence[PreferencePair]) -> tuple[list[PreferencePair], int]:
    """Pairs with every recorded flip turned back (``meta.flipped`` -> false)."""
    out, restored = [], 0
    for p in pairs:
        if p.meta.get("flipped") is True:
            p = p.swapped(p_chosen=p.p_chosen)
            restored += 1
        out.append(dataclasses.replace(p, flags=list(p.flags),
                                       meta={**p.meta, "flipped": False}))
    return out, restored


def inject_flips(pairs: Sequence[PreferencePair], rate: float, seed: int = 0
                 ) -> tuple[list[PreferencePair], np.ndarray]:
    """Flip a seeded random `rate` of the pairs; returns them and the flip mask."""
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    n = len(pairs)
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).choice(n, size=round(rate * n), replace=False)] = True
    out = []
    for p, flip in zip(pairs, mask, strict=True):
        q = p.swapped(p_chosen=p.p_chosen) if flip else p
        q.meta = {**q.meta, "flipped": bool(flip)}
        out.append(q)
    return out, mask


def parse_methods(spec: str) -> list[str]:
    names = list(VARIANTS) if spec == "all" else [m.strip() for m in spec.split(",") if m]
    unknown = [m for m in names if m not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from all, {', '.join(VARIANTS)}")
    return names


def score_methods(view: AuditView, truth: np.ndarray, methods: Sequence[str]
                  ) -> dict[str, dict[str, Any]]:
    """Every method's detection metrics on one audit; `random` removes as many pairs
    as `sac` acts on (or 10% when sac is not run)."""
    results: dict[str, dict[str, Any]] = {}
    order = sorted(methods, key=lambda m: m == "random")  # random after sac
    for name in order:
        params = None
        if name == "random":
            budget = results.get("sac", {}).get("flagged")
            params = {"count": budget} if budget is not None else None
        try:
            table = run_method(view, name, params)
        except ValueError as e:  # a method the committee cannot support (no judge...)
            results[name] = {"error": str(e)}
            continue
        results[name] = detection_metrics(table, truth)
        results[name]["acted"] = int(says_wrong(table).sum())
    return {m: results[m] for m in methods}


def bench_noise(data: str | Path, config: NoiseBenchConfig | str | Path | None = None,
                out: str | Path = "bench-noise", *, engine_options: Any = None,
                **overrides: Any) -> dict[str, Any]:
    """Run the noise benchmark with the settings `config` (a :class:`NoiseBenchConfig`
    or a settings file; its defaults when None, `overrides` on top: ``rates=[0.1]``,
    ``committee="tiny"``); writes per rate the noisy data, its audit and the decisions'
    metrics, plus noise.csv, noise.png, noise.json and config.toml in `out`."""
    from preflab.audit.audit_pairs import audit

    config = resolve_config(NoiseBenchConfig, config, **overrides)
    started = time.perf_counter()
    names = parse_methods(",".join(config.methods))
    pairs = list(iter_pairs(read_pairs(data).pairs))[:config.limit]
    truth_pairs, restored = restore_truth(pairs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_config(config, out)
    results: dict[str, Any] = {}
    audits: dict[str, Any] = {}
    for rate in config.rates:
        folder = out / f"rate-{rate:g}"
        noisy, mask = inject_flips(truth_pairs, rate, config.seed)
        write_pairs(noisy, folder / "pairs.jsonl")
        (folder / "injected.json").write_text(json.dumps(
            {"rate": rate, "seed": config.seed, "n": len(noisy), "n_flipped": int(mask.sum()),
             "ids": [p.id for p, f in zip(noisy, mask, strict=True) if f]}))
        summary = audit(folder / "pairs.jsonl", committee=config.committee,
                        out=folder / "audit", engine_options=engine_options, seed=config.seed)
        audits[f"{rate:g}"] = {"flip_detection_auc": summary.get("flip_detection_auc"),
                               "seconds": summary["seconds"]}
        view = AuditView.load(folder / "audit")
        results[f"{rate:g}"] = score_methods(view, mask, names)
    frame = results_frame(results)
    frame.to_csv(out / "noise.csv", index=False)
    plot_noise(frame, out / "noise.png")
    report = {"data": str(data), "n_pairs": len(pairs), "restored_recorded_flips": restored,
              "committee": str(config.committee), "seed": config.seed, "audits": audits,
              "results": results, "seconds": round(time.perf_counter() - started, 2)}
    (out / "noise.json").write_text(json.dumps(report, indent=1))
    return report


def results_frame(results: dict[str, dict[str, dict[str, Any]]]) -> pd.DataFrame:
    rows = [{"rate": float(rate), "method": m, **r} for rate, by in results.items()
            for m, r in by.items()]
    return pd.DataFrame(rows)


def plot_noise(frame: pd.DataFrame, path: Path) -> None:
    """Residual noise against pairs kept, one panel per rate; flip methods as circles,
    remove methods as squares."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = sorted(frame["rate"].unique())
    fig, axes = plt.subplots(1, len(rates), figsize=(6 * len(rates), 4.5), squeeze=False)
    for ax, rate in zip(axes[0], rates, strict=True):
        sub = frame[(frame["rate"] == rate) & frame["residual_noise"].notna()]
        for _, row in sub.iterrows():
            marker = "o" if "flip" in row["method"] or row["method"] in FLIPPING_SAC else "s"
            ax.scatter(row["kept_fraction"], row["residual_noise"], marker=marker)
            ax.annotate(row["method"], (row["kept_fraction"], row["residual_noise"]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(rate, color="grey", lw=0.8, ls="--", label="noise before cleaning")
        ax.set_title(f"{rate:.0%} injected flips")
        ax.set_xlabel("fraction of pairs kept")
        ax.set_ylabel("noise among kept pairs")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
