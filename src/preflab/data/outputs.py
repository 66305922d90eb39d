"""Outputs that never replace what the user did not ask to replace.

A command checks its output before doing any work:

- a file: :func:`check_output_file` refuses one that exists unless ``overwrite``;
- a folder: :func:`prepare_output_dir` creates it, or accepts it when it is empty or
  was written by the same command before (it holds that command's marker file,
  ``.preflab-COMMAND.json``), and refuses any other non-empty folder unless
  ``overwrite``. It then writes the marker, so a rerun (or a resume after an
  interrupted run) is recognised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from preflab.errors import OutputExistsError

_HINT = "pass --overwrite (in Python: overwrite=True) to replace it"


def marker_path(folder: str | Path, command: str) -> Path:
    """The marker file that says `command` wrote `folder`: ``.preflab-COMMAND.json``."""
    return Path(folder) / f".preflab-{command.replace(' ', '-')}.json"


def check_output_file(path: str | Path, overwrite: bool = False) -> Path:
    """`path` as a Path if a file may be written there; else :class:`OutputExistsError`.

    An existing file is refused unless `overwrite`; a folder is always refused.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; {_HINT}")
    return path


def prepare_output_dir(path: str | Path, command: str, overwrite: bool = False,
                       info: dict[str, Any] | None = None) -> Path:
    """Make `path` ready for `command` to write into and mark it as that command's.

    Accepted: a missing folder (created), an empty one, one with `command`'s marker
    (written before by the same command: the command replaces its own files), or any
    folder with `overwrite` (other files in it are left alone). Refused with
    :class:`OutputExistsError`: a file, or a non-empty folder without the marker.
    The marker records ``{"command": command, **info}``.
    """
    path = Path(path)
    marker = marker_path(path, command)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path} exists and is not a folder")
    if path.is_dir() and not overwrite and not marker.exists() and any(path.iterdir()):
        raise OutputExistsError(f"{path} is a folder that preflab {command} did not write "
                                f"and is not empty; {_HINT}")
    path.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"command": command, **(info or {})}) + "\n",
                      encoding="utf-8")
    return path


def read_files(folder: str | Path, command: str, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The files of an output folder `command` wrote, by name, in memory (its marker
    and the names in `skip` left out): what a result object keeps and saves again."""
    folder = Path(folder)
    leave = {*skip, marker_path(folder, command).name}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and p.name not in leave}


def save_files(files: dict[str, bytes], folder: str | Path, command: str,
               overwrite: bool = False, info: dict[str, Any] | None = None) -> Path:
    """Write `files` into `folder` as `command` would (checked and marked by
    :func:`prepare_output_dir`); returns the folder."""
    folder = prepare_output_dir(folder, command, overwrite, info)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder
