"""Settings of ``preflab serve`` (``--config FILE``): where it listens, what it
serves, and its :class:`~preflab.serve.limits.Limits`. Light: no torch."""

from __future__ import annotations

from dataclasses import dataclass

from preflab.serve.limits import Limits
from preflab.settings import FromFile, setting


@dataclass(frozen=True)
class ServeConfig(FromFile):
    """Everything that defines a judge server but the model."""

    host: str = setting("127.0.0.1", "Address to listen on.")
    port: int = setting(8000, "Port (0 picks a free one).", min=0, max=65535)
    served_name: str | None = setting(None, "Model name the API reports.", shown="MODEL")
    quiet: bool = setting(False, "Do not log requests.")
    reward: bool | None = setting(
        None, "Serve a reward model on vLLM's Pooling and Classify APIs (/pooling, "
              "/classify), or a causal LM on /v1/completions.", flag="--reward/--generate",
        shown="a folder whose config names a sequence-classification model is a reward "
              "model")
    threads: int | None = setting(None, "CPU threads for torch.", min=1, shown="torch's choice")
    limits: Limits = setting(factory=Limits, help="What one request may ask; each limit is "
                                                  "an option.")
