"""An ASGI middleware on Gradio's FastAPI app: no open redirect, no traceback to clients.

* ``/gradio_api/file=<URL>``: Gradio answers ``302`` to any http(s) URL given
  there (an open redirect on our domain). Any ``file=`` target with a URL
  scheme (``http:``, ``HTTPS:``, ``javascript:``...) or starting with ``//`` is
  refused with ``403``; local files (``allowed_paths``) are served as before.
* Fairness: requests that join the queue take a token from their address's bucket
  (:mod:`webapp.guards.fairness`); an empty bucket answers ``429``, and so does a video from a client
  that already has one queued or running.
* Uploads: each address has a budget of upload bytes (``Fairness.upload_mb``), checked from
  ``Content-Length`` before the body is read (``429`` over it); the paths the upload route stores are
  handed to the server's :class:`~webapp.guards.disk.DiskGuard`, which deletes those no analysis claims
  within ``upload_unclaimed_s``.
* Live offers (``fn_name="offer"`` to ``/gradio_api/component_server``, fastrtc's signalling) are admitted
  by the server's :class:`~webapp.live.gate.LiveGate` by client address before fastrtc sees them; refused
  ones get fastrtc's own ``concurrency_limit_reached`` answer with the reason in ``meta.message``.
* The middleware is given its server (``Middleware(GuardMiddleware, server=...)``): the buckets, the
  disk guard and the limits are that server's.
* Memory: Gradio 5.50 keeps every event it ever queued (the event with its request and data, an
  analytics row) and, for each call of the HTTP API (``/call/<api>``, whose session is the event
  id), a session holding a copy of every component's config, up to 10,000 sessions.
  :func:`prune_finished_events` drops those of events finished two minutes ago (at most every 30 s),
  with the result of an API call nobody came to read by then.
* Errors: Gradio builds its app with ``debug=True``, so an exception in a route
  (e.g. a malformed body to ``/gradio_api/component_server``, the WebRTC
  signalling route) answered ``500`` with the whole Python traceback, naming
  server paths. Here a client's mistake (bad JSON, a body with missing fields,
  an unknown session or component) gets ``400``/``404`` and one sentence;
  anything else gets ``500`` "Internal server error" and the traceback goes to
  the server log only.
"""
from __future__ import annotations

import json
import logging
import re

from .fairness import VideosInFlight, is_queued_request, session_of

log = logging.getLogger(__name__)

_FILE_ROUTE = re.compile(r"/file=(.*)\Z", re.DOTALL)
_URL_LIKE = re.compile(r"\A\s*(?:[a-z][a-z0-9+.\-]*:|[/\\]{2})", re.IGNORECASE)


def is_url_target(path: str) -> bool:
    """True if ``path`` is a ``.../file=<target>`` request whose target is a URL (or ``//host``)."""
    m = _FILE_ROUTE.search(path)
    return bool(m and _URL_LIKE.match(m.group(1)))


def _client_error(exc: BaseException, path: str) -> tuple[int, str] | None:
    """(status, message) for an exception caused by what the client sent, else None."""
    import pydantic

    if isinstance(exc, json.JSONDecodeError):
        return 400, "Invalid JSON body."
    if isinstance(exc, pydantic.ValidationError):
        fields = sorted({".".join(str(p) for p in e.get("loc", ())) or "body" for e in exc.errors()})
        return 400, f"Malformed request body (check: {', '.join(fields)[:200]})."
    if path.rstrip("/").endswith("/component_server") and isinstance(exc, (KeyError, IndexError, TypeError,
                                                                             AttributeError, ValueError)):
        return 404 if isinstance(exc, KeyError) else 400, (
            "Unknown session or component." if isinstance(exc, KeyError) else "Malformed request.")
    from python_multipart.exceptions import FormParserError
    from starlette.formparsers import MultiPartException

    if isinstance(exc, (MultiPartException, FormParserError)):
        return 400, "Malformed multipart body."
    return None


def _content_length(scope, max_upload_mb: float) -> float:
    """The request's declared body size in bytes (a body without one counts as the largest upload)."""
    for k, v in scope.get("headers") or ():
        if k == b"content-length":
            try:
                return max(0.0, float(v))
            except ValueError:
                break
    return max_upload_mb * 2**20


def prune_finished_events(app, keep_s: float = 120.0, now: float | None = None) -> int:
    """Drop what Gradio keeps of events that finished more than ``keep_s`` ago; the number dropped."""
    import time

    blocks = app.get_blocks() if hasattr(app, "get_blocks") else None
    queue = getattr(blocks, "_queue", None)
    holder = getattr(blocks, "state_holder", None)
    if queue is None or holder is None:
        return 0
    now = time.time() if now is None else now
    in_flight = {e._id for e in VideosInFlight.all_events(queue)}
    done = []
    for eid, row in list(queue.event_analytics.items()):
        if (eid not in in_flight and row.get("status") in ("success", "failed", "cancelled")
                and now - float(row.get("time") or now) > keep_s):
            done.append(eid)
    from common.compat import gradio_forget_events

    gradio_forget_events(blocks, done)
    return len(done)


def live_offer(body: bytes | None) -> str | None:
    """The connection id of a WebRTC offer (a ``component_server`` body with ``fn_name="offer"`` and an SDP
    offer, not an ICE candidate), else None."""
    try:
        d = json.loads(body or b"")
    except ValueError:
        return None
    if not isinstance(d, dict) or d.get("fn_name") != "offer" or not isinstance(d.get("data"), dict):
        return None
    data = d["data"]
    wid = data.get("webrtc_id")
    return wid if data.get("type") == "offer" and isinstance(wid, str) and wid else None


#: The answer to a video offer without VP8 (``common.compat.aiortc_vp8_only``: the server decodes VP8 alone).
VP8_ONLY = ("This server takes VP8 video only, and the offer has none. Every browser sends VP8: "
            "use a browser, or offer VP8.")


def offers_vp8(body: bytes | None) -> bool:
    """Whether a live offer's SDP (:func:`live_offer` said it is one) offers VP8 in each of its video sections."""
    try:
        sdp = json.loads(body or b"")["data"].get("sdp")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    if not isinstance(sdp, str):
        return False
    sections = sdp.split("\nm=")[1:]
    return all("VP8/90000" in sec for sec in sections if sec.startswith("video"))


def _wait_text(wait_s: float) -> str:
    """``12 s``, or ``about 4 minutes`` from 90 s on (a person reads the notice)."""
    return f"{max(1.0, wait_s):.0f} s" if wait_s < 90 else f"about {round(wait_s / 60):.0f} minutes"


async def _send_json(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _record_uploads(body: bytes, disk) -> None:
    """The upload route answers with the list of stored paths: hand them to the disk guard."""
    try:
        paths = json.loads(body)
    except ValueError:
        return
    if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
        disk.uploaded(paths)


async def _peek_body(receive, limit: int = 1 << 20):
    """Read a request body (up to ``limit`` bytes) and a ``receive`` that replays it to the app."""
    chunks, more, first = [], True, []
    while more and sum(map(len, chunks)) < limit:
        msg = await receive()
        if msg["type"] != "http.request":
            first.append(msg)
            break
        chunks.append(msg.get("body", b""))
        more = msg.get("more_body", False)
    body = b"".join(chunks)
    replay = first or [{"type": "http.request", "body": body, "more_body": more}]

    async def receive_again():
        return replay.pop(0) if replay else await receive()

    return (body if not more else None), receive_again


class GuardMiddleware:
    """Refuses ``file=<URL>`` (403) and turns exceptions into short messages (see the module docstring)."""

    def __init__(self, app, server):
        self.app = app
        self.fairness, self.disk, self.settings = server.fairness, server.disk, server.settings
        self.gate = getattr(server, "gate", None)
        self._next_prune = 0.0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if is_url_target(path):
            log.info("refused file= URL target: %.120r", path)
            return await _send_json(send, 403, "File not allowed.")
        if is_queued_request(scope.get("method", ""), path):
            body, receive = await _peek_body(receive) if "/call/" not in path else (None, receive)
            client = self.fairness.client_address(scope)
            wait = self.fairness.buckets.take(client) if self.fairness.counts(path, body) else 0.0
            if wait > 0:
                log.info("429 for %s: too many queued requests", client)
                return await _send_json(send, 429, f"Too many requests from your address: please wait {_wait_text(wait)} "
                                                   "and try again.")
            if self.fairness.is_video(path, body):
                app = scope.get("app")
                queue = getattr(app.get_blocks(), "_queue", None) if hasattr(app, "get_blocks") else None
                token = self.fairness.videos.reserve(queue, client, session_of(body))
                if token is None:
                    log.info("429 for %s: a video already in flight", client)
                    return await _send_json(send, 429, "You already have a video being analysed; wait for it to "
                                                       "finish, then send the next one.")
                try:
                    return await self._guarded(scope, receive, send, path)
                finally:
                    self.fairness.videos.release(token)  # the event is in Gradio's queue now (or was refused there)
        if scope.get("method") == "POST" and path.rstrip("/").endswith("/upload"):
            mb = _content_length(scope, self.settings.max_upload_mb) / 2**20
            client = self.fairness.client_address(scope)
            wait = self.fairness.upload_mb.take(client, cost=mb)
            if wait > 0:
                log.info("429 for %s: upload of %.1f MB over its budget", client, mb)
                return await _send_json(send, 429, f"Too much uploaded from your address: please wait {_wait_text(wait)} "
                                                   "and try again.")
        if self.gate is not None and scope.get("method") == "POST" and path.rstrip("/").endswith("/component_server"):
            body, receive = await _peek_body(receive)
            webrtc_id = live_offer(body)
            if webrtc_id is not None:
                if not offers_vp8(body):
                    log.info("refused a live offer without VP8 from %s", self.fairness.client_address(scope))
                    return await self._refuse_offer(send, "unsupported_codec", VP8_ONLY)
                return await self._live_offer(scope, receive, send, path, webrtc_id)
        self._housekeeping(scope)
        return await self._guarded(scope, receive, send, path)

    async def _live_offer(self, scope, receive, send, path, webrtc_id):
        refusal = await self.gate.admit(self.fairness.client_address(scope), webrtc_id)
        if refusal is not None:
            return await self._refuse_offer(send, "concurrency_limit_reached", refusal,
                                            limit=self.settings.live_streams_per_client)
        try:
            await self.gate.make_room()
            return await self._guarded(scope, receive, send, path)
        finally:
            self.gate.settle(webrtc_id)  # refused or failed in fastrtc: nothing to hold

    @staticmethod
    async def _refuse_offer(send, error: str, message: str, **meta) -> None:
        """fastrtc's own shape of a refused offer (its page shows ``error``), with the server's sentence."""
        body = json.dumps({"status": "failed", "meta": {"error": error, **meta, "message": message}}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _housekeeping(self, scope) -> None:
        import time

        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 30.0
        try:
            app = scope.get("app")
            n = prune_finished_events(app)
            if n:
                b = app.get_blocks()
                log.info("dropped %d finished events; kept %d events, %d sessions", n,
                         len(b._queue.event_analytics), len(b.state_holder.session_data))
        except Exception:  # housekeeping must never break a request
            log.exception("could not prune finished events")

    async def _guarded(self, scope, receive, send, path):
        started = False
        upload = scope.get("method") == "POST" and path.rstrip("/").endswith("/upload")
        body: list[bytes] = []

        async def send_tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            elif upload and message["type"] == "http.response.body" and sum(map(len, body)) < 1 << 20:
                body.append(message.get("body", b""))
                if not message.get("more_body"):
                    _record_uploads(b"".join(body), self.disk)
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            known = _client_error(exc, path)
            if known is None:
                log.exception("%s %s failed", scope.get("method"), path[:200])
                status, message = 500, "Internal server error."
            else:
                generic = known[1] == "Malformed request."  # could also be a bug: keep the traceback
                log.info("%s %s: %s (%s: %s)", scope.get("method"), path[:200], known[1], type(exc).__name__,
                         str(exc)[:200], exc_info=exc if generic else None)
                status, message = known
            if started:
                raise
            await _send_json(send, status, message)
