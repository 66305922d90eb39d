"""Settings of ``preflab review init`` (``--config FILE``; each project's
``DB.config.toml`` reproduces its selection and assignments). ``review add-pairs``
chooses pairs with the same selection settings. Light: no pandas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from preflab.settings import FromFile, setting

STRATA = ("bin", "source")
ON_ERROR = ("fail", "skip")


@dataclass
class ReviewConfig(FromFile):
    """Which audited pairs people review, how many reviewers each gets, and who."""

    sample: int | None = setting(
        None, "Review N pairs: the lowest-agreement N, or with --strata a seeded sample "
              "spread over the strata.", min=1,
        shown="every pair in the none and low agreement bins")
    strata: str | None = setting(None, "Draw --sample evenly per audit bin or per audit "
                                       "source.", choices=STRATA)
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
