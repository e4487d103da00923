"""The files an analysis writes, as one typed value, and writing several files all-or-nothing.

* :class:`OutputFiles` - the paths of one video's, live session's or snapshot's outputs.
* :class:`AtomicFiles` - write each file under a hidden temporary name next to its
  final name; :meth:`~AtomicFiles.commit` renames them all, and any failure
  (or :meth:`~AtomicFiles.discard`) deletes them all, so a final name never
  holds a half-written file and a failed run leaves nothing behind::

      with AtomicFiles() as files:            # an exception inside: nothing is left
          write_a(files.temp(out / "a.csv"))
          write_b(files.temp(out / "b.json"))
      # here both a.csv and b.json exist under their final names
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class OutputFiles:
    """Paths of the outputs of one video, live session or snapshot; None where not written."""

    timeline_csv: Path | None = None
    timeline_json: Path | None = None
    summary_json: Path | None = None
    summary_csv: Path | None = None
    annotated_mp4: Path | None = None
    chart_png: Path | None = None

    def paths(self) -> list[Path]:
        """The files that exist, in field order (what a download list shows)."""
        out = []
        for f in fields(self):
            p = getattr(self, f.name)
            if p is not None and Path(p).is_file():
                out.append(Path(p))
        return out

    def __iter__(self):
        return iter(self.paths())


def temp_path(final: Path) -> Path:
    """A hidden temporary name next to ``final`` (same folder, so the rename is atomic)."""
    final = Path(final)
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")


class AtomicFiles:
    """A set of files written all-or-nothing (see the module doc).

    :meth:`temp` registers a final path and returns the temporary path to write
    instead.  :meth:`commit` moves every temporary file to its final name; if a
    move fails, the files already moved are deleted too.  :meth:`discard`
    deletes every temporary file.  As a context manager: commit on success,
    discard on an exception.  A file that must exist after commit but was never
    written makes the commit fail (and deletes the rest).
    """

    def __init__(self):
        self._pairs: list[tuple[Path, Path]] = []  # (final, temporary)
        self.committed = False

    def temp(self, final) -> Path:
        if self.committed:
            raise ValueError("these files are already committed")
        final = Path(final)
        tmp = temp_path(final)
        self._pairs.append((final, tmp))
        return tmp

    @property
    def finals(self) -> list[Path]:
        return [f for f, _ in self._pairs]

    def commit(self) -> None:
        if self.committed:
            return
        moved: list[Path] = []
        try:
            for final, tmp in self._pairs:
                os.replace(tmp, final)
                moved.append(final)
        except BaseException:
            for final in moved:
                final.unlink(missing_ok=True)
            self.discard()
            raise
        self.committed = True

    def discard(self) -> None:
        for _, tmp in self._pairs:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def __enter__(self) -> AtomicFiles:
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.discard()
