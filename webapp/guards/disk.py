"""Disk use bounded: uploads nobody uses are removed, the caches have a quota, and new work is
refused while the disk is nearly full.

* **Unclaimed uploads**: every file the upload route stores is recorded (:meth:`DiskGuard.uploaded`,
  fed by :class:`webapp.guards.asgi.GuardMiddleware` from the route's answer); an analysis that
  opens a file claims it (:meth:`DiskGuard.claim`, from :class:`webapp.media.Media`).  A
  recorded upload not claimed within ``unclaimed_s`` is deleted by :meth:`sweep` (run by the server's one
  retention sweeper, :mod:`webapp.guards.retention`): a client that
  uploads and never analyses costs disk for minutes, not for the hour of Gradio's own cache.
* **Quota**: when the files under the watched folders (Gradio's upload and output cache, the
  processed videos, the live timelines) add up to more than ``quota_bytes``, the oldest are
  deleted first (never one written in the last minute: it may be in use).
* **Free space**: :meth:`check_free` raises :class:`DiskFull` ("the server is busy") when the
  disk holding the outputs has less than ``min_free_bytes`` free.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)

#: A file written this recently is never deleted by the quota (it may be being written or read).
RECENT_S = 60.0


class DiskFull(RuntimeError):
    """Too little free disk space to accept new work (the message is for the user)."""


class DiskGuard:
    @classmethod
    def from_settings(cls, settings) -> "DiskGuard":
        """The guard of a server's :class:`webapp.settings.Settings` (folders are added by the server)."""
        return cls(quota_bytes=int(settings.disk_quota_mb * 2**20) if settings.disk_quota_mb else None,
                   unclaimed_s=settings.upload_unclaimed_s, min_free_bytes=int(settings.min_free_mb * 2**20))

    def __init__(self, dirs=(), quota_bytes: int | None = None, unclaimed_s: float | None = 300.0,
                 min_free_bytes: int = 0, free_path: Path | None = None):
        self.dirs = [Path(d) for d in dirs]
        self.quota_bytes, self.unclaimed_s, self.min_free_bytes = quota_bytes, unclaimed_s, min_free_bytes
        self.free_path = Path(free_path) if free_path else None
        self._lock = threading.Lock()
        self._uploads: OrderedDict[str, float] = OrderedDict()  # upload path -> time stored (unclaimed)
        self.removed_unclaimed = 0
        self.removed_quota = 0

    def watch(self, *dirs) -> None:
        for d in dirs:
            p = Path(d)
            if p not in self.dirs:
                self.dirs.append(p)

    # -- uploads -------------------------------------------------------------
    def uploaded(self, paths) -> None:
        """Files the upload route just stored (unclaimed until an analysis opens them)."""
        now = time.monotonic()
        with self._lock:
            for p in paths:
                self._uploads[str(Path(p).resolve())] = now
            while len(self._uploads) > 100_000:  # bounded whatever the traffic
                self._uploads.popitem(last=False)

    def claim(self, path) -> None:
        """An analysis opened ``path``: it is no longer an unclaimed upload."""
        with self._lock:
            self._uploads.pop(str(Path(path).resolve()), None)

    def pending(self) -> int:
        with self._lock:
            return len(self._uploads)

    # -- free space ----------------------------------------------------------
    def check_free(self) -> None:
        if not self.min_free_bytes or self.free_path is None:
            return
        try:
            free = shutil.disk_usage(self.free_path).free
        except OSError:
            return
        if free < self.min_free_bytes:
            raise DiskFull("The server is busy (its disk is nearly full); please try again in a few minutes.")

    # -- sweeping ------------------------------------------------------------
    def sweep(self) -> dict:
        """Delete unclaimed uploads past ``unclaimed_s``, then the oldest files over the quota."""
        gone_unclaimed = self._sweep_unclaimed()
        gone_quota = self._sweep_quota()
        return {"unclaimed": gone_unclaimed, "quota": gone_quota}

    def _sweep_unclaimed(self) -> int:
        if self.unclaimed_s is None:
            return 0
        cutoff = time.monotonic() - self.unclaimed_s
        with self._lock:
            old = [p for p, t in self._uploads.items() if t < cutoff]
            for p in old:
                del self._uploads[p]
        n = 0
        for p in old:
            if _remove(Path(p)):
                n += 1
        if n:
            log.info("removed %d upload(s) no analysis used within %.0f s", n, self.unclaimed_s)
        self.removed_unclaimed += n
        return n

    def _sweep_quota(self) -> int:
        if not self.quota_bytes:
            return 0
        files = []
        total = 0
        for d in self.dirs:
            if not d.is_dir():
                continue
            for root, _, names in os.walk(d):
                for name in names:
                    p = Path(root) / name
                    try:
                        st = p.stat()
                    except OSError:
                        continue
                    files.append((st.st_mtime, st.st_size, p))
                    total += st.st_size
        if total <= self.quota_bytes:
            return 0
        n = 0
        now = time.time()
        for mtime, size, p in sorted(files):
            if total <= self.quota_bytes:
                break
            if now - mtime < RECENT_S:
                continue
            if _remove(p):
                total -= size
                n += 1
        if n:
            log.warning("disk quota: removed the %d oldest file(s); %.0f MB now in use", n, total / 2**20)
        self.removed_quota += n
        return n


def _remove(p: Path) -> bool:
    """Delete a file and its folder when that is left empty (Gradio keeps one folder per upload)."""
    try:
        p.unlink()
    except OSError:
        return False
    try:
        p.parent.rmdir()
    except OSError:
        pass
    return True
