"""Fairness between clients: one address cannot fill the request queue for everyone.

Every request for an analysis that joins Gradio's queue (``POST .../queue/join`` from the
pages and ``gradio_client`` for an event registered with :func:`limited`, ``POST
.../call/<api>`` for the API endpoints) takes a token from its address's bucket: ``QUEUE_BURST_PER_CLIENT`` tokens, refilled at ``QUEUE_RATE_PER_CLIENT``
per second.  An empty bucket answers ``429`` ("too many requests from your address")
before the request reaches the queue, so with the default 16-place queue and a burst of
6, a flooding client holds at most a third of the places and others still get in.
Other events (the Live tab's controls, which fastrtc forwards through the queue on every
change, its refresh timers, downloads) are not counted: a slider drag must never be refused.  Checked by
:class:`webapp.asgi_guard.GuardMiddleware`.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict

_QUEUED = re.compile(r"/(?:queue/join|call/[^/]+)/?\Z")


#: Gradio event ids (``fn_index``) and API names of the analyses (see :func:`limited`).
LIMITED_FNS: set[int] = set()
LIMITED_APIS = {"analyze_image", "analyze_video"}


def limited(dep):
    """Mark an event (what ``.click(...)`` returns) as an analysis that counts against the bucket."""
    LIMITED_FNS.add(int(dep["id"]))
    return dep


def client_address(scope) -> str:
    """The client's address: the connection's, or behind a trusted proxy (``TRUST_PROXY=1``, or on a
    Hugging Face Space, where ``SPACE_ID`` is set) the last ``X-Forwarded-For`` entry, the one the
    proxy itself added (earlier entries are whatever the client sent)."""
    import os

    if os.environ.get("TRUST_PROXY") == "1" or os.environ.get("SPACE_ID"):
        for k, v in scope.get("headers") or ():
            if k == b"x-forwarded-for":
                last = v.decode("latin-1").split(",")[-1].strip()
                if last:
                    return last
    return (scope.get("client") or ("?", 0))[0]


def is_queued_request(method: str, path: str) -> bool:
    return method == "POST" and bool(_QUEUED.search(path))


def counts(path: str, body: bytes | None) -> bool:
    """Whether a queued request (``path``, and for ``queue/join`` its JSON ``body``) is an analysis."""
    if "/call/" in path:
        return path.rstrip("/").rsplit("/call/", 1)[1] in LIMITED_APIS
    try:
        fn = json.loads(body or b"{}").get("fn_index")
    except (ValueError, AttributeError):
        return True  # unreadable: count it
    return fn is None or int(fn) in LIMITED_FNS


class ClientBuckets:
    """Token buckets by client address (bounded: the least recently seen addresses are forgotten)."""

    def __init__(self, burst: float, rate_per_s: float, max_clients: int = 10_000):
        self.burst, self.rate = float(burst), float(rate_per_s)
        self.max_clients = max_clients
        self._b: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, time)
        self._lock = threading.Lock()
        self.refused = 0

    def take(self, client: str, now: float | None = None) -> float:
        """0.0 when the client may go on (a token taken), else the seconds until its next token."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, t = self._b.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - t) * self.rate)
            if tokens >= 1.0:
                self._b[client] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._b[client] = (tokens, now)
                wait = (1.0 - tokens) / self.rate if self.rate > 0 else 60.0
                self.refused += 1
            while len(self._b) > self.max_clients:
                self._b.popitem(last=False)
            return wait


def _from_settings() -> ClientBuckets:
    from . import settings as S

    return ClientBuckets(S.QUEUE_BURST_PER_CLIENT, S.QUEUE_RATE_PER_CLIENT)


#: The app's buckets (configured from the environment).
BUCKETS = _from_settings()
