"""Settings of ``preflab review init`` (``--config FILE``; each project's
``DB.config.toml`` reproduces its selection and assignments). ``review add-pairs``
chooses pairs with the same selection settings (``select``, ``sample``, ``strata``,
``seed``: :mod:`preflab.review.select`). Light: no pandas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from preflab.settings import FromFile, setting

STRATA = ("bin", "source")
SELECT = ("priority", "random", "strata", "uncertainty", "active")
ON_ERROR = ("fail", "skip")


@dataclass
class ReviewConfig(FromFile):
    """Which audited pairs people review, how many reviewers each gets, and who."""

    select: str | None = setting(
        None, "How to choose the pairs: priority (lowest agreement, then lowest "
              "P(chosen), first), strata (a seeded sample spread over --strata), random "
              "(a seeded uniform sample), uncertainty (P(chosen) closest to 0.5) or active "
              "(where a verdict would move the committee's weights most). All but priority "
              "need --sample N.", choices=SELECT,
        shown="strata when --strata is given, else priority")
    sample: int | None = setting(
        None, "Review N pairs, chosen by --select.", min=1,
        shown="every pair in the none and low agreement bins")
    strata: str | None = setting(None, "Draw --sample evenly per audit bin or per audit "
                                       "source (--select strata: bin unless given).",
                                 choices=STRATA)
    per_pair: int = setting(3, "Reviewers per pair.", min=1)
    reviewers: list[str] = setting(factory=list, help="Reviewer names, comma-separated (new "
                                                      "ones get a token).")
    seed: int = setting(0, "Seed of the sample (and of a new project's assignments and the "
                           "order each reviewer sees a pair's replies in).", min=0)
    on_error: str = setting("fail", "fail: stop at the first bad record; skip: record it and "
                                    "go on.", choices=ON_ERROR)


def config_path(db: str | Path) -> Path:
    """Where ``review init`` writes the settings of project `db`: beside it, as
    ``DB.config.toml`` (``review.sqlite.config.toml``)."""
    db = Path(db)
    return db.with_name(db.name + ".config.toml")
