"""Fair shares of the live workers: a stream whose frames cost far more than its share is throttled.

Every stream has one frame at a time on the server's worker pool (:mod:`webapp.live.pool`), in turn, so
a stream whose frames take three times as long (1920x1080 with twelve faces, analysed at 1280x720, beside
640x480 with one: 2.6-2.9 times the server time per frame in ``tests/test_live_hostile.py``) holds a worker
three times as long each turn, and the others wait for it.  :class:`Throttle` (one per server,
used by :class:`~webapp.live.handler.LiveHandler`) keeps the server time each stream's analysed frames
took over the last :data:`WINDOW_S` seconds, and decides before each frame:

* the workers are **busy** when at least two streams ran frames in the window and their frames together
  took at least :data:`BUSY` of the workers' time (``workers x WINDOW_S``);
* then a stream's **share** is the workers' time divided by the streams running (2 workers, 4 streams:
  half a worker each).  A stream that used more than its share, and whose frames cost more than ``factor``
  (``LIVE_THROTTLE_FACTOR``, default 2) times those of the median other stream, is not analysed (and not
  answered) until its use is back under its share (an unanalysed frame costs nothing, so that is soon).
  A stream's cost per frame is the mean of its last :data:`COST_FRAMES` analysed frames without the
  dearest quarter (a frame that waited for a core on a loaded machine, the first frames of a stream);
  a stream is judged once it has that many.  Streams of like cost are never throttled: their uneven turns
  on a loaded machine are not a hog.

An expensive stream therefore gets a lower analysed frame rate (its user keeps seeing its last annotated
frame in between, and is told once why) and the others keep theirs; with no more streams than workers, or
an idle server, nothing is throttled (no stream can then make another wait).  Since one frame at a time
already keeps any stream to one worker, the gain is largest with many streams per worker; what a peer
costs outside the handler (decoding its video, encoding the answer) is not counted.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

log = logging.getLogger(__name__)

#: Seconds of past frames whose server time is counted.
WINDOW_S = 2.0
#: A stream's cost per frame is taken over this many of its last analysed frames.
COST_FRAMES = 8
#: A stream with no analysed frame for this long is forgotten (its cost is measured anew).
FORGET_S = 30.0
#: The workers are busy when the streams' frames took at least this share of their time in the window.
BUSY = 0.8


class Throttle:
    """Server time per stream over the last :data:`WINDOW_S` and the throttling rule (module doc)."""

    def __init__(self, factor: float = 2.0, window_s: float = WINDOW_S, busy: float = BUSY, clock=time.monotonic):
        #: Only a stream whose frames cost more than ``factor`` times the median other stream's is throttled
        #: (0: never).
        self.factor = float(factor)
        self.window_s, self.busy, self.clock = float(window_s), float(busy), clock
        self._spent: dict[str, deque[tuple[float, float]]] = {}  # stream -> (when done, seconds) in the window
        self._costs: dict[str, deque[float]] = {}  # stream -> seconds of its last COST_FRAMES frames
        self._last: dict[str, float] = {}  # stream -> when its last analysed frame was done
        self._lock = threading.Lock()
        self.skipped = 0  # frames answered without analysis
        self._throttled: set[str] = set()  # streams throttled at least once (logged once)

    def _used_locked(self, now: float) -> dict[str, float]:
        """Seconds of server time per stream in the window (streams with none are forgotten)."""
        out = {}
        for k in list(self._spent):
            d = self._spent[k]
            while d and now - d[0][0] > self.window_s:
                d.popleft()
            if d:
                out[k] = sum(s for _, s in d)
            else:
                del self._spent[k]
        for k in [k for k, t in self._last.items() if now - t > FORGET_S]:  # a stream gone (or paused long)
            del self._last[k]
            self._costs.pop(k, None)
            self._throttled.discard(k)
        return out

    @staticmethod
    def _cost(costs) -> float:
        """Seconds per frame: the mean of ``costs`` without their dearest quarter."""
        c = sorted(costs)[:max(1, len(costs) * 3 // 4)]
        return sum(c) / len(c)

    def over_share(self, stream: str, workers: int) -> bool:
        """Whether ``stream``'s next frame is to be skipped: the workers are busy, it used more than its share
        of them in the window, and its frames cost more than ``factor`` times the median other stream's."""
        if self.factor <= 0:
            return False
        now = self.clock()
        with self._lock:
            used = self._used_locked(now)
            costs = self._costs.get(stream)
            if costs is None or len(costs) < COST_FRAMES or len(used) < 2 or stream not in used:
                return False
            mine = self._cost(costs)
            others = sorted(self._cost(c) for k, c in self._costs.items() if k != stream and k in used)
        capacity = max(1, int(workers)) * self.window_s
        if not others or sum(used.values()) < self.busy * capacity or used[stream] <= capacity / len(used):
            return False
        if mine <= self.factor * others[len(others) // 2]:
            return False
        with self._lock:
            self.skipped += 1
            first = stream not in self._throttled
            self._throttled.add(stream)
        if first:
            log.info("live stream %s throttled: %.0f ms a frame (the median other stream %.0f ms), %.0f%% of a worker "
                     "(its share %.0f%%)", stream, 1000 * mine, 1000 * others[len(others) // 2],
                     100 * used[stream] / self.window_s, 100 * capacity / len(used) / self.window_s)
        return True

    def spent(self, stream: str, seconds: float) -> None:
        """An analysed frame of ``stream`` took ``seconds`` of server time."""
        now = self.clock()
        with self._lock:
            self._spent.setdefault(stream, deque()).append((now, float(seconds)))
            self._costs.setdefault(stream, deque(maxlen=COST_FRAMES)).append(float(seconds))
            self._last[stream] = now

    def used(self) -> dict[str, float]:
        """Seconds of server time per stream in the window (for status and tests)."""
        with self._lock:
            return self._used_locked(self.clock())
