"""Figures from one source: docs/benchmarks.md is what ``python -m benchmarks.report`` writes from
benchmarks/results/*.json, and every performance figure the other docs quote (a number with ``ms``,
``frames/s`` or ``fps``) appears in it verbatim.  Rates of inputs (a 30 frames-per-second camera) are
written out in words, so they are not taken for measurements.  Every relative link of the docs
resolves to a file, and every ``#anchor`` into docs/benchmarks.md to one of its headings."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GENERATED = REPO / "docs" / "benchmarks.md"
HAND_WRITTEN = sorted({REPO / "README.md", REPO / "Space.md", REPO / "export" / "README.md",
                       *(REPO / "docs").glob("*.md")} - {GENERATED})
FIGURE = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)(?:\*\*)? ?(ms|frames/s|fps)\b")


def test_the_results_document_is_generated_from_the_json():
    r = subprocess.run([sys.executable, "-m", "benchmarks.report", "--check"], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr


@pytest.mark.parametrize("doc", HAND_WRITTEN, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_quoted_figure_is_in_the_results_document(doc):
    generated = GENERATED.read_text().replace("**", "")
    quoted = {f"{n} {u}" for n, u in FIGURE.findall(doc.read_text().replace("**", ""))}
    missing = sorted(q for q in quoted if q not in generated)
    assert not missing, f"{doc.name} quotes figures that docs/benchmarks.md does not hold: {missing}"


def test_the_figure_pattern_finds_figures():
    assert FIGURE.findall("takes **9.47 ms** per frame, 68.7 frames/s, 18.0 / 21.0 fps") == \
        [("9.47", "ms"), ("68.7", "frames/s"), ("21.0", "fps")]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    h = heading.strip().lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


@pytest.mark.parametrize("doc", [*HAND_WRITTEN, GENERATED], ids=lambda p: p.relative_to(REPO).as_posix())
def test_links_resolve(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'<img src="([^"]+)"', text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            bad.append(target)
        elif anchor and dest.suffix == ".md":
            heads = {_anchor(h) for h in re.findall(r"^#+ (.*)$", dest.read_text(), re.M)}
            if anchor not in heads:
                bad.append(target)
    assert not bad, f"{doc.name}: links that lead nowhere: {bad}"
