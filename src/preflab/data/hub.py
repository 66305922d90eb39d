"""Whether the Hugging Face hub can be reached: asked once per process, cheaply.

Without it a hub id on a machine with no network costs half a minute of retries
(``datasets`` and ``huggingface_hub`` back off five times) before its error. Here
offline mode (``HF_HUB_OFFLINE``) answers at once, and otherwise one TCP connect to
the hub's endpoint (``HF_ENDPOINT``, or the HTTPS proxy that would carry the
request) with a short timeout decides; its answer is kept for the process.
"""

from __future__ import annotations

import functools
import os
import socket
import urllib.request
from urllib.parse import urlsplit

HUB_ENDPOINT = "https://huggingface.co"
CONNECT_TIMEOUT = 3.0  # seconds for the one connect attempt
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = ("1", "true", "yes", "on")


def endpoint() -> str:
    """The hub's address: ``$HF_ENDPOINT``, else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT).rstrip("/")


def offline_mode() -> str | None:
    """The offline variable that is set (``HF_HUB_OFFLINE`` ...), or None."""
    return next((v for v in OFFLINE_VARIABLES
                 if os.environ.get(v, "").strip().lower() in _TRUE), None)


def _target(url: str) -> tuple[str, int]:
    """(host, port) a request to `url` connects to first: its proxy when one applies."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return p.hostname or "", p.port or 80
    return host, port


@functools.cache
def _connect_error(url: str) -> str | None:
    """Why one connect to `url`'s host failed, or None when it connected."""
    try:
        with socket.create_connection(_target(url), timeout=CONNECT_TIMEOUT):
            return None
    except OSError as e:  # refused, no route, no DNS, timed out
        return e.strerror or str(e) or type(e).__name__


def unreachable() -> str | None:
    """Why the hub cannot be reached, as a phrase naming it, or None when it can be."""
    variable = offline_mode()
    if variable:
        return f"the hub is unreachable: offline mode ({variable} is set)"
    why = _connect_error(endpoint())
    return None if why is None else f"the hub ({endpoint()}) is unreachable: {why}"
