"""Errors that name the file, line and field a user must fix."""

from __future__ import annotations


class FieldError(ValueError):
    """A problem with one field of one record; the reader adds where it was found."""

    def __init__(self, field: str | None, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"field '{field}': {reason}" if field else reason)


class PairError(ValueError):
    """A record that cannot become a preference pair, located in its source."""

    def __init__(self, source: str, line: int | None, field: str | None, reason: str,
                 unit: str = "line") -> None:
        self.source = source
        self.line = line
        self.field = field
        self.reason = reason
        self.unit = unit
        where = f"{source}, {unit} {line}" if line is not None else source
        what = f"field '{field}': {reason}" if field else reason
        super().__init__(f"{where}: {what}")


class FormatError(ValueError):
    """A file or dataset whose format preflab cannot recognise or write."""


class SourceError(FormatError):
    """A source that cannot be read at all: missing on the hub, empty, truncated or corrupt."""


class OutputExistsError(FileExistsError):
    """An output that would replace a file or folder the user did not ask to replace."""
