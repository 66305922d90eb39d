"""Where the API's stages write, and the results that keep their files there.

:func:`output_folder` gives a stage its folder: the caller's `out` (checked and
marked before any work, as the command line does) or a temporary one. A
:class:`FolderResult` (a trained model, an evaluation) keeps that folder (a
temporary one lives as long as the result) and :meth:`FolderResult.save` copies it
with the command line's no-overwrite rule.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from preflab.data.outputs import marker_path, prepare_output_dir
from preflab.settings import CONFIG_FILE

Scratch = tempfile.TemporaryDirectory  # a temporary folder: removed when dropped


@contextmanager
def output_folder(command: str, out: str | Path | None, overwrite: bool = False,
                  info: dict[str, Any] | None = None
                  ) -> Iterator[tuple[Path, Scratch[str] | None]]:
    """Where `command` writes: `out` checked and marked as the command's
    (:func:`~preflab.data.outputs.prepare_output_dir`, `info` in its marker), or a
    temporary folder, yielded too (it is removed when dropped: a result keeps it).

    A run that fails leaves no temporary folder, and takes back what it wrote into
    an `out` that was missing or empty while that is only its marker and settings
    (a run that got further leaves its checkpoints, to resume from)."""
    if out is None:
        scratch = tempfile.TemporaryDirectory(prefix=f"preflab-{command}-")
        try:
            yield Path(scratch.name), scratch
        except BaseException:
            scratch.cleanup()
            raise
        return
    out = Path(out)
    fresh = not out.exists() or (out.is_dir() and not any(out.iterdir()))
    created = not out.exists()
    folder = prepare_output_dir(out, command, overwrite, info)
    try:
        yield folder, None
    except BaseException:
        if fresh:
            _take_back(folder, command, created)
        raise


def _take_back(folder: Path, command: str, created: bool) -> None:
    """Remove what a failed run wrote into `folder` if it is only the marker and the
    settings: the folder too when the run `created` it."""
    setup = {marker_path(folder, command).name, CONFIG_FILE}
    written = list(folder.iterdir())
    if not {p.name for p in written} <= setup:
        return
    if created:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for path in written:
        path.unlink(missing_ok=True)


@dataclass
class FolderResult:
    """A result whose files stay in `folder`: the caller's `out`, an earlier run's
    folder it was loaded from, or a temporary folder kept in `scratch` (it lives as
    long as the result)."""

    COMMAND: ClassVar[str] = ""

    folder: Path
    scratch: Scratch[str] | None = field(default=None, repr=False, compare=False,
                                         kw_only=True)

    @property
    def command(self) -> str:
        """The command whose marker the folder holds (``.preflab-COMMAND.json``)."""
        return self.COMMAND

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Copy every file to `folder`, as ``preflab COMMAND --out folder`` writes them;
        `folder` must be new, empty or one this command wrote, unless `overwrite`."""
        folder = Path(folder)
        if folder.resolve() == self.folder.resolve():
            return folder
        prepare_output_dir(folder, self.command, overwrite)
        shutil.copytree(self.folder, folder, dirs_exist_ok=True)
        return folder


def read_json(path: Path) -> Any:
    """A JSON file a stage wrote."""
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> pd.DataFrame:
    """A JSON-lines file a stage wrote, one row per line, its values as written (no
    guessed types: an id ``"007"`` stays a string)."""
    with path.open(encoding="utf-8") as f:
        return pd.DataFrame([json.loads(line) for line in f if line.strip()])
