"""Parsing source records into pairs: format detection, and what a bad record becomes
(a :class:`Reject` with its position and reason, or the error that stops the read)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal, TextIO

from preflab.data.hh import looks_like_hh, parse_hh
from preflab.data.native import looks_like_native, parse_native
from preflab.data.pair import PreferencePair
from preflab.data.trl import looks_like_trl, parse_trl
from preflab.errors import FieldError, FormatError, PairError

Parser = Callable[[dict[str, Any], str | None], PreferencePair]
# Detection order matters: HH records are also TRL-shaped (chosen/rejected strings).
FORMATS: dict[str, tuple[Callable[[dict[str, Any]], bool], Parser]] = {
    "hh": (looks_like_hh, parse_hh),
    "preflab": (looks_like_native, parse_native),
    "trl": (looks_like_trl, parse_trl),
}
OnError = Literal["fail", "skip"]


def detect_format(record: dict[str, Any]) -> str | None:
    """The name of the first format whose shape the record has, or None."""
    return next((name for name, (looks, _) in FORMATS.items() if looks(record)), None)


def _unknown(record: dict[str, Any]) -> FieldError:
    keys = ", ".join(sorted(record)) or "none"
    return FieldError(None, f"unknown format: record has keys [{keys}]; expected HH transcripts "
                      "(chosen, rejected), TRL (prompt?, chosen, rejected) or preflab "
                      "(prompt as messages, chosen, rejected)")


def _wrong_type(record: dict[str, Any], types: dict[str, str]) -> FieldError | None:
    """The first of prompt/chosen/rejected whose value is neither text nor messages."""
    for name in ("prompt", "chosen", "rejected"):
        value = record.get(name)
        if value is not None and not isinstance(value, str | list):
            got = types.get(name) or type(value).__name__
            return FieldError(name, f"expected a string or a list of messages, got {got}")
    return None


@dataclass
class Reject:
    """An input position that did not become a pair, and why."""

    source: str
    position: int
    unit: str
    field: str | None
    reason: str
    raw: str

    def error(self) -> PairError:
        return PairError(self.source, self.position, self.field, self.reason, self.unit)


def reject_reasons(rejects: Iterable[Reject]) -> dict[str, int]:
    """Counts of rejects by reason (without the detail after a colon)."""
    counts: dict[str, int] = {}
    for r in rejects:
        key = r.reason.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def rejects_note(rejects: list[Reject], n_records: int, name: str | object,
                 path: object | None) -> str | None:
    """What a stage says when records of `name` were rejected on read and skipped
    (`path`: the file that lists them, if any); None when none were."""
    if not rejects:
        return None
    seen = f" (see {path})" if path else " (--rejects FILE lists them)"
    return (f"{len(rejects)} of {n_records} records of {name} were rejected on read and "
            f"skipped{seen}")


class RecordParser:
    """Turns source items into pairs, detecting the format on the first readable record."""

    def __init__(self, source: str, unit: str, fmt: str, subset: str | None,
                 types: dict[str, str] | None = None) -> None:
        if fmt != "auto" and fmt not in FORMATS:
            raise FormatError(f"unknown format {fmt!r}; choose one of {sorted(FORMATS)} or auto")
        self.source, self.unit, self.auto, self.subset = source, unit, fmt == "auto", subset
        self.types = types or {}  # column types of a table source, named in type errors
        self.format: str | None = None if self.auto else fmt
        self.n_records = 0  # records read by `pairs`
        self.rejects: list[Reject] = []  # the records `pairs` skipped

    def pairs(self, records: Iterable[tuple[int, dict[str, Any] | FieldError, str]],
              on_error: OnError, sink: TextIO | None = None) -> Iterator[PreferencePair]:
        """The pairs of source items `records`, counted in `n_records`. A record that is no
        pair raises its :class:`PairError` (`on_error` ``fail``), or (``skip``) is kept in
        `rejects` and written to `sink` as a JSON line."""
        for pos, record, raw in records:
            self.n_records += 1
            out = self.parse(pos, record, raw)
            if isinstance(out, PreferencePair):
                yield out
                continue
            if on_error == "fail":
                raise out.error()
            self.rejects.append(out)
            if sink is not None:
                sink.write(json.dumps(asdict(out), ensure_ascii=False) + "\n")

    def parse(self, pos: int, record: dict[str, Any] | FieldError, raw: str
              ) -> PreferencePair | Reject:
        if isinstance(record, FieldError):
            return Reject(self.source, pos, self.unit, record.field, record.reason, raw)
        try:
            return self._parse(record)
        except FieldError as e:
            problem = e
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            problem = FieldError(None, f"unreadable record: {e}")
        raw = raw or json.dumps(record, ensure_ascii=False, default=str)
        return Reject(self.source, pos, self.unit, problem.field, problem.reason, raw)

    def _parse(self, record: dict[str, Any]) -> PreferencePair:
        shape = detect_format(record)
        if shape is None and "chosen" not in record and "rejected" not in record:
            raise _unknown(record)
        if self.format is None:
            if shape is None:
                raise _wrong_type(record, self.types) or _unknown(record)
            self.format = shape
        elif self.auto and shape not in (self.format, None) and (self.format, shape) != (
                "trl", "hh"):
            raise FieldError(None, f"record is in {shape} format but the source started in "
                             f"{self.format} format")
        pair = FORMATS[self.format][1](record, self.subset)
        if isinstance(record.get("id"), str) and record["id"] != pair.id:
            pair.meta.setdefault("source_id", record["id"])  # the user's own id, kept
        return pair
