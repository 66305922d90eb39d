"""preflab: read, audit, clean, label and train on preference feedback."""

from preflab.data.pair import PreferencePair, pair_id
from preflab.data.read import ReadResult, read_pairs
from preflab.data.write import write_pairs
from preflab.errors import PairError

__version__ = "0.1.0"

__all__ = [
    "PairError",
    "PreferencePair",
    "ReadResult",
    "__version__",
    "pair_id",
    "read_pairs",
    "write_pairs",
]
