"""What an audit that streams keeps on disk besides its pairs (a
:class:`~preflab.data.spill.PairSpill`): features too large for memory go to a
:class:`RowFile`, read back with plain reads (pages of a memory map would count as
resident memory once touched).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BLOCK_BYTES = 32 * 2**20  # what a RowFile reads at a time


class RowFile:
    """A 2-D float64 array on disk: rows appended in blocks, read back by slice or by
    row numbers a block at a time (enough of numpy's indexing for cross-fitting)."""

    def __init__(self, path: Path, width: int) -> None:
        self.path, self.width, self.rows = path, width, 0
        self.block = max(1, BLOCK_BYTES // (8 * width))
        path.write_bytes(b"")

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1, self.width)
        with self.path.open("ab") as f:
            values.tofile(f)
        self.rows += len(values)

    def __len__(self) -> int:
        return self.rows

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.width

    def _read(self, start: int, stop: int) -> np.ndarray:
        count = (stop - start) * self.width
        return np.fromfile(self.path, dtype=np.float64, count=count,
                           offset=start * self.width * 8).reshape(-1, self.width)

    def __getitem__(self, index: slice | np.ndarray) -> np.ndarray:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.rows)
            return self._read(start, stop)[::step] if stop > start else np.zeros((0, self.width))
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        out = np.empty((len(index), self.width))
        order = np.argsort(index, kind="stable")
        ordered = index[order]
        for start in range(0, self.rows, self.block):
            lo, hi = np.searchsorted(ordered, [start, start + self.block])
            if hi > lo:
                out[order[lo:hi]] = self._read(start, min(start + self.block, self.rows))[
                    ordered[lo:hi] - start]
        return out


