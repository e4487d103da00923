"""What the server keeps on disk and in memory, and for how long: one sweeper for all of it.

One thread (:meth:`Retention.start`), one pass (:meth:`Retention.sweep`) every ``tick_s``:

* **live sessions**: idle connections released, ended sessions forgotten after ``live_keep_s``, and
  their timeline folders deleted then (:meth:`webapp.live.registry.SessionRegistry.reap`);
* **processed uploads**: result folders of the Image/Video tabs and the API older than ``output_keep_s``;
* **Gradio's file cache** (uploads and returned files): files older than ``output_keep_s``;
* **unclaimed uploads and the disk quota** (:class:`webapp.guards.disk.DiskGuard`), every ``disk_sweep_s``;
* the heap's free pages handed back to the system (glibc ``malloc_trim``), every ``disk_sweep_s``.

Nothing else deletes files on a schedule: Gradio's own ``delete_cache`` is off, and a video request
does not sweep.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


def remove_older(root: Path, max_age_s: float, now: float | None = None, folders: bool = True) -> int:
    """Delete the entries of ``root`` (folders with everything in them, and files) untouched for ``max_age_s``.

    ``folders=False``: walk ``root`` and delete old files only (then empty folders).  Returns how many went.
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    now = time.time() if now is None else now
    n = 0
    if folders:
        for d in root.iterdir():
            try:
                if d.stat().st_mtime < now - max_age_s:
                    shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink()
                    n += 1
            except OSError:
                pass
        return n
    for dirpath, dirnames, names in os.walk(root, topdown=False):
        for name in names:
            p = Path(dirpath) / name
            try:
                if p.stat().st_mtime < now - max_age_s:
                    p.unlink()
                    n += 1
            except OSError:
                pass
        if Path(dirpath) != root:
            try:
                Path(dirpath).rmdir()  # only if empty
            except OSError:
                pass
    return n


class Retention:
    """The one retention sweeper of a server (see the module doc)."""

    def __init__(self, settings, registry, disk, output_dir: Path, cache_dir: Callable[[], Path | None],
                 trim: Callable[[], object] = lambda: None, tick_s: float = 10.0):
        self.settings, self.registry, self.disk = settings, registry, disk
        self.output_dir, self.cache_dir, self.trim = Path(output_dir), cache_dir, trim
        self.tick_s = float(tick_s)
        self._last_disk = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.removed = {"outputs": 0, "cache": 0}

    def sweep(self, now: float | None = None, disk: bool | None = None) -> dict:
        """One pass; ``disk`` forces (True) or skips (False) the disk guard's part (default: every disk_sweep_s)."""
        s = self.settings
        mono = time.monotonic()
        out = {"live": self.registry.reap()}
        keep = s.output_keep_s
        out["outputs"] = remove_older(self.output_dir, keep, now)
        cache = self.cache_dir()
        out["cache"] = remove_older(cache, keep, now, folders=False) if cache is not None else 0
        self.removed["outputs"] += out["outputs"]
        self.removed["cache"] += out["cache"]
        if disk or (disk is None and mono - self._last_disk >= s.disk_sweep_s):
            self._last_disk = mono
            out["disk"] = self.disk.sweep()
            self.trim()
        return out

    def start(self) -> threading.Thread:
        """Start the sweeper thread (once; later calls return the running thread)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="retention")
                self._thread.start()
            return self._thread

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.sweep()
            except Exception:  # pragma: no cover - never let the sweeper die
                log.exception("retention sweep")
