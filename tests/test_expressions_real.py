"""The default emotion model on real face videos whose expressions were named by eye
(``benchmarks/groundtruth/expressions.json``: a woman crying, then smiling; a man neutral, then smiling),
through the default pipeline, as ``python -m benchmarks.smoothing`` reports them."""
from __future__ import annotations

from benchmarks.smoothing import real_videos
from classifier import DEFAULT_MODEL


def test_the_default_model_names_the_expressions_of_real_videos():
    rows = real_videos(DEFAULT_MODEL)
    assert {(r["video"], r["label"]) for r in rows} == {
        ("single_face.mp4", "neutral"), ("single_face.mp4", "happiness"),
        ("WolfgangLanger_Pexels.mp4", "sadness"), ("WolfgangLanger_Pexels.mp4", "happiness")}
    for r in rows:
        a, b = r["frames"]
        assert r["with_face"] == b - a + 1, r  # the face is found on every frame of every segment
        # the shown (smoothed) label is the named one on 90% of the frames or more, and holds
        assert r["shown_accuracy"] >= 0.9 and r["shown_changes"] <= 1, r
