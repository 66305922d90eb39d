"""``curve.png``: both PMs' standardised scores against KL, and their gap."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curve(table: list[dict[str, Any]], path: Path) -> None:
    """Both PMs' standardised score against KL (top) and their gap (bottom), with
    their intervals."""
    from preflab.figures import pyplot

    plt = pyplot()
    fig, (ax, gap) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True,
                                  gridspec_kw={"height_ratios": [2, 1]})
    for method, style in (("best-of-n", "-o"), ("rl", "--s")):
        rows = [r for r in table if r["method"] == method]
        if not rows:
            continue
        kl = [r["kl"] for r in rows]
        for pm, color in (("train", "tab:blue"), ("test", "tab:orange")):
            ax.plot(kl, [r[pm] for r in rows], style, color=color,
                    label=f"{pm} PM ({method})")
            ax.fill_between(kl, [r[f"{pm}_ci95"][0] for r in rows],
                            [r[f"{pm}_ci95"][1] for r in rows], color=color, alpha=0.15)
        gap.plot(kl, [r["gap"] for r in rows], style, color="tab:red",
                 label=f"train - test ({method})")
        gap.fill_between(kl, [r["gap_ci95"][0] for r in rows],
                         [r["gap_ci95"][1] for r in rows], color="tab:red", alpha=0.15)
        if method == "best-of-n":
            for r in rows:
                ax.annotate(f"N={r['n']}", (r["kl"], r["train"]), fontsize=7,
                            textcoords="offset points", xytext=(2, 5))
    ax.set_ylabel("PM score (standardised on\nthe policy's replies)")
    ax.set_title("Optimising against the train PM, scored by both PMs")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=8)
    gap.axhline(0, color="grey", lw=0.5)
    gap.set_ylabel("gap (paired 95% CI)")
    gap.set_xlabel("KL from the policy (nats)")
    gap.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
