"""Native libraries' chatter on stderr, silenced around model loads."""
from __future__ import annotations

import contextlib
import os
import sys
import threading

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe/LiteRT are chatty on stderr
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_QUIET_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_native_logs():
    """Silence what native libraries write to stderr (file descriptor 2) inside the block, unless
    ``EMOTION_VERBOSE=1``.  MediaPipe/LiteRT print dozens of INFO/WARNING lines on every model load
    that no setting turns off; Python's own messages written meanwhile from other threads are lost
    too, so keep the block short (a model load)."""
    if os.environ.get("EMOTION_VERBOSE", "").strip() in ("1", "true", "yes"):
        yield
        return
    with _QUIET_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                try:
                    yield
                finally:
                    os.dup2(saved, 2)
        finally:
            os.close(saved)
