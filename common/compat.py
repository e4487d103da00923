"""Every change this project makes to a third-party library's internals, in one place.

Each patch is a function that applies it once (idempotent), with a docstring saying why it
exists, which upstream behaviour it changes, and the versions it was written for.  Each has a
test in ``tests/test_compat.py`` that fails if the upstream internal it relies on moves.
:func:`check_versions` refuses, with a clear message, a library version outside the tested set.
"""
from __future__ import annotations

import threading

_APPLIED: set[str] = set()
_LOCK = threading.Lock()


def _once(name: str) -> bool:
    """True the first time ``name`` is asked for (the caller then applies the patch)."""
    with _LOCK:
        if name in _APPLIED:
            return False
        _APPLIED.add(name)
        return True


# -- MediaPipe -------------------------------------------------------------------------------

def mediapipe_detector_without_finaliser() -> None:
    """MediaPipe's Tasks ``FaceDetector.__del__`` replaced by a no-op.

    Why: mediapipe 1.2.2 closes a garbage-collected detector through its dispatcher's thread
    pool, which the collector may have shut down first: the process then waits for ever.  Every
    detector here is closed explicitly instead (``close()``, context managers, and at exit, see
    ``tracker.detect``); a detector that was never closed leaks its native part.
    Upstream: ``mediapipe.tasks.python.vision.FaceDetector.__del__`` (written for mediapipe 1.2.2).
    """
    if not _once("mediapipe_detector_without_finaliser"):
        return
    from mediapipe.tasks.python import vision

    def _no_finaliser(self) -> None:
        pass

    vision.FaceDetector.__del__ = _no_finaliser
