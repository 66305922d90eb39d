"""Figures for the HTML reports: matplotlib (Agg) rendered to inline PNG data URIs."""

from __future__ import annotations

import base64
import io
from typing import Any


def png(fig: Any) -> str:
    """The figure as a ``data:image/png`` URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
