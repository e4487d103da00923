"""Model loading off the stream loop: :class:`ModelLoader`.

A Hub download must never stall the live stream loop, which all connections
share, so a model asked for by the page is loaded in a background thread
(started on demand, never at import) and its state remembered.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from classifier import DEFAULT_MODEL
from classifier.hub import ClassifierCache
from tracker.facemesh import FaceMeshCache


class ModelLoader:
    """Loads classifiers in background threads and remembers failures for a while.

    ``status(name)`` returns ``("ready", None)``, ``("loading", None)`` or
    ``("failed", warning)``.  A successful load lands in the classifier cache,
    so a pipeline switching to it afterwards costs nothing.
    """

    def __init__(self, retry_after_s: float = 300.0, cache: ClassifierCache | None = None,
                 loader: Callable | None = None):
        self.retry_after_s = retry_after_s
        #: The server's loaded classifiers: pipelines of this server load from it.
        self.cache = cache if cache is not None else ClassifierCache()
        #: The server's face-mesh models (the landmark stage's), loaded when a face is first measured.
        self.meshes = FaceMeshCache()
        self._load = loader or self.cache.load
        self._lock = threading.Lock()
        self._state: dict[str, tuple[str, str | None, float]] = {DEFAULT_MODEL: ("ready", None, 0.0)}

    def status(self, name: str) -> tuple[str, str | None]:
        with self._lock:
            st = self._state.get(name)
            if st is not None and not (st[0] == "failed" and time.monotonic() - st[2] > self.retry_after_s):
                return st[0], st[1]
            self._state[name] = ("loading", None, time.monotonic())
        threading.Thread(target=self._run, args=(name,), daemon=True, name=f"load-{name}").start()
        return "loading", None

    def _run(self, name: str) -> None:
        try:
            _, warn = self._load(name)
            st = ("failed", warn, time.monotonic()) if warn else ("ready", None, time.monotonic())
        except Exception as exc:  # unknown spec, broken file
            st = ("failed", f"model {name!r} could not be loaded: {exc}", time.monotonic())
        with self._lock:
            self._state[name] = st

    def wait(self, name: str, timeout: float = 30.0) -> tuple[str, str | None]:
        """Block until ``name`` is no longer loading (tests, the page's model notice)."""
        t_end = time.monotonic() + timeout
        st = self.status(name)
        while st[0] == "loading" and time.monotonic() < t_end:
            time.sleep(0.05)
            st = self.status(name)
        return st

    def usable(self, want: str, current: str) -> tuple[str, str | None]:
        """The model a stream should run now, and a notice for the page (None when ``want`` runs).

        ``want`` when it is loaded; ``current`` while it loads; the default when it failed.
        """
        state, warn = self.status(want)
        if state == "ready":
            return want, None
        if state == "loading":
            return current, f"loading model {want!r}…"
        return DEFAULT_MODEL, warn
