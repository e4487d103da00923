"""The files an analysis writes, as one typed value (not a dict of strings)."""
from __future__ import annotations

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
