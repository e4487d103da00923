"""Fairness between clients: one address cannot fill the request queue for everyone.

Every request for an analysis that joins Gradio's queue (``POST .../queue/join`` from the
pages and ``gradio_client`` for an event registered with :func:`limited`, ``POST
.../call/<api>`` for the API endpoints) takes a token from its address's bucket: ``QUEUE_BURST_PER_CLIENT`` tokens, refilled at ``QUEUE_RATE_PER_CLIENT``
per second.  An empty bucket answers ``429`` ("too many requests from your address")
before the request reaches the queue, so with the default 16-place queue and a burst of
6, a flooding client holds at most a third of the places and others still get in.
Videos in flight: one client (address, and also Gradio session) may have at most
``VIDEOS_PER_CLIENT`` videos queued or running at once (:class:`VideosInFlight`); another one is
refused at join time (``429``, "you already have a video being analysed") and never reaches the
queue, while other clients' videos still get in.
Uploads: each address has a budget of upload bytes (:attr:`Fairness.upload_mb`), checked from the
request's ``Content-Length`` before its body is read; over it, ``429``.
Other events (the Live tab's controls, which fastrtc forwards through the queue on every
change, its refresh timers, downloads) are not counted: a slider drag must never be refused.  Checked by
:class:`webapp.guards.asgi.GuardMiddleware`.  All of this state belongs to one :class:`Fairness`,
which a :class:`webapp.server.Server` owns: two servers in one process share none of it.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict

_QUEUED = re.compile(r"/(?:queue/join|call/[^/]+)/?\Z")


#: API names of the analyses, and of the video analyses among them.
LIMITED_APIS = {"analyze_image", "analyze_video"}
VIDEO_APIS = {"analyze_video"}


def client_address(scope, trust_proxy: bool = False) -> str:
    """The client's address: the connection's, or behind a trusted proxy (``trust_proxy``: ``TRUST_PROXY=1``,
    or on a Hugging Face Space, where ``SPACE_ID`` is set) the last ``X-Forwarded-For`` entry, the one the
    proxy itself added (earlier entries are whatever the client sent)."""
    if trust_proxy:
        for k, v in scope.get("headers") or ():
            if k == b"x-forwarded-for":
                last = v.decode("latin-1").split(",")[-1].strip()
                if last:
                    return last
    return (scope.get("client") or ("?", 0))[0]


def is_queued_request(method: str, path: str) -> bool:
    return method == "POST" and bool(_QUEUED.search(path))


def counts(path: str, body: bytes | None, limited_fns=frozenset()) -> bool:
    """Whether a queued request (``path``, and for ``queue/join`` its JSON ``body``) is an analysis
    (an API name of :data:`LIMITED_APIS`, or an event id of ``limited_fns``)."""
    if "/call/" in path:
        return path.rstrip("/").rsplit("/call/", 1)[1] in LIMITED_APIS
    try:
        fn = json.loads(body or b"{}").get("fn_index")
    except (ValueError, AttributeError):
        return True  # unreadable: count it
    return fn is None or int(fn) in limited_fns


def is_video(path: str, body: bytes | None, video_fns=frozenset()) -> bool:
    """Whether a queued request (as in :func:`counts`) is a video analysis."""
    if "/call/" in path:
        return path.rstrip("/").rsplit("/call/", 1)[1] in VIDEO_APIS
    try:
        fn = json.loads(body or b"{}").get("fn_index")
        return fn is not None and int(fn) in video_fns
    except (ValueError, AttributeError, TypeError):
        return False


def session_of(body: bytes | None) -> str | None:
    try:
        s = json.loads(body or b"{}").get("session_hash")
    except (ValueError, AttributeError):
        return None
    return s if isinstance(s, str) and s else None


class VideosInFlight:
    """At most ``per_client`` video analyses queued or running per client address and per session.

    What is in flight is read from Gradio's queue itself (its waiting events and active jobs), so a
    finished, failed or cancelled event (a client that disconnects while waiting is dropped from the
    queue by Gradio) frees its place at once: nothing to release, nothing that can leak.  The only
    state kept here bridges the moment between the check and Gradio's push of the event: a request
    being joined holds a reservation until its join request has been answered
    (:meth:`reserve` / :meth:`release`, always paired by the middleware; stale ones expire after
    ``reserve_max_s`` in any case).  Checks and reservations run on the server's event loop, with no
    await between them, so two simultaneous joins cannot both slip through.
    """

    def __init__(self, per_client: int, reserve_max_s: float = 120.0, video_fns: set[int] | None = None,
                 trust_proxy: bool = False):
        self.per_client = int(per_client)
        self.reserve_max_s = reserve_max_s
        self.video_fns = video_fns if video_fns is not None else set()  # the video events' ids (Fairness.video)
        self.trust_proxy = trust_proxy
        self._pending: dict[int, tuple[str, str | None, float]] = {}
        self._next = 0
        self.refused = 0

    @staticmethod
    def all_events(queue) -> list:
        """Every event waiting in ``queue`` (Gradio's ``blocks._queue``) or running."""
        events = []
        for eq in list(getattr(queue, "event_queue_per_concurrency_id", {}).values()):
            events += list(eq.queue)
        for job in list(getattr(queue, "active_jobs", ()) or ()):
            events += list(job or ())
        return events

    def _queued(self, queue) -> list:
        """The video events waiting in ``queue`` or running."""
        return [e for e in self.all_events(queue)
                if getattr(e.fn, "_id", None) in self.video_fns or getattr(e.fn, "api_name", None) in VIDEO_APIS]

    def count(self, queue, address: str, session: str | None, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        for k, (_, _, t) in list(self._pending.items()):
            if now - t > self.reserve_max_s:
                del self._pending[k]
        n = sum(a == address or (session is not None and s == session) for a, s, _ in self._pending.values())
        for e in self._queued(queue) if queue is not None else ():
            req = getattr(e, "request", None)
            addr = client_address(req.scope, self.trust_proxy) if req is not None and hasattr(req, "scope") else None
            n += addr == address or (session is not None and e.session_hash == session)
        return n

    def reserve(self, queue, address: str, session: str | None) -> int | None:
        """A reservation (pass it to :meth:`release`), or None if this client is at its limit."""
        if self.per_client <= 0:
            return -1
        if self.count(queue, address, session) >= self.per_client:
            self.refused += 1
            return None
        self._next += 1
        self._pending[self._next] = (address, session, time.monotonic())
        return self._next

    def release(self, token: int | None) -> None:
        if token is not None:
            self._pending.pop(token, None)


class ClientBuckets:
    """Token buckets by client address (bounded: the least recently seen addresses are forgotten)."""

    def __init__(self, burst: float, rate_per_s: float, max_clients: int = 10_000):
        self.burst, self.rate = float(burst), float(rate_per_s)
        self.max_clients = max_clients
        self._b: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, time)
        self._lock = threading.Lock()
        self.refused = 0

    def take(self, client: str, now: float | None = None, cost: float = 1.0) -> float:
        """0.0 when the client may go on (``cost`` tokens taken), else the seconds until it has them."""
        now = time.monotonic() if now is None else now
        cost = min(float(cost), self.burst)
        with self._lock:
            tokens, t = self._b.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - t) * self.rate)
            if tokens >= cost:
                self._b[client] = (tokens - cost, now)
                wait = 0.0
            else:
                self._b[client] = (tokens, now)
                wait = (cost - tokens) / self.rate if self.rate > 0 else 60.0
                self.refused += 1
            while len(self._b) > self.max_clients:
                self._b.popitem(last=False)
            return wait


class Fairness:
    """One server's fairness state: request buckets, upload budgets and videos in flight by client, and
    the events that count as analyses (built from :class:`webapp.settings.Settings`)."""

    def __init__(self, settings):
        self.trust_proxy = bool(settings.trust_proxy)
        #: Queued analyses by client address.
        self.buckets = ClientBuckets(settings.queue_burst_per_client, settings.queue_rate_per_client)
        #: Upload MB by client address: one client cannot flood the upload cache and push others' uploads out.
        self.upload_mb = ClientBuckets(settings.upload_burst_mb_per_client, settings.upload_mb_per_s_per_client)
        #: Gradio event ids (``fn_index``) of the analyses, and of the video analyses among them.
        self.limited_fns: set[int] = set()
        self.video_fns: set[int] = set()
        self.videos = VideosInFlight(settings.videos_per_client, video_fns=self.video_fns,
                                     trust_proxy=self.trust_proxy)

    def limited(self, dep):
        """Mark an event (what ``.click(...)`` returns) as an analysis that counts against the bucket."""
        self.limited_fns.add(int(dep["id"]))
        return dep

    def video(self, dep):
        """Mark an event as a video analysis: it counts against the bucket and the videos in flight."""
        self.video_fns.add(int(dep["id"]))
        return self.limited(dep)

    def client_address(self, scope) -> str:
        return client_address(scope, self.trust_proxy)

    def counts(self, path: str, body: bytes | None) -> bool:
        return counts(path, body, self.limited_fns)

    def is_video(self, path: str, body: bytes | None) -> bool:
        return is_video(path, body, self.video_fns)
