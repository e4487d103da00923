"""``python -m deploy`` against a local fake Hub (tests/fakehub.py, HF_ENDPOINT): the real CLI and the
real huggingface_hub client, in a subprocess with its own HF_HOME, so no saved login of this machine
is used."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakehub import FakeHub

REPO = Path(__file__).resolve().parents[1]


def deploy(tmp_path: Path, endpoint: str, *args: str, token: str | None = "tok-alice", extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update({"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_TELEMETRY": "1"})
    if token:
        env["HF_TOKEN"] = token
    env.update(extra_env or {})
    r = subprocess.run([sys.executable, "-m", "deploy", *args], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=180)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict[str, bytes]:
    """The --dry-run tree, as {path: bytes}: what every upload must hold exactly."""
    d = tmp_path_factory.mktemp("dry") / "tree"
    r = subprocess.run([sys.executable, "-m", "deploy", "x/y", "--dry-run", str(d)], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("*") if p.is_file()}


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.api.users["tok-alice"] = {"name": "alice", "orgs": ["emotion-lab"]}
        h.api.users["tok-bob"] = {"name": "bob"}
        yield h


def test_the_tree_is_the_app_and_nothing_else(tree):
    assert tree["README.md"] == (REPO / "Space.md").read_bytes()
    assert b"sdk: docker" in tree["README.md"] and b"app_port: 7860" in tree["README.md"]
    assert tree["Dockerfile"] == (REPO / "deploy" / "Dockerfile").read_bytes()
    assert tree["requirements.txt"] == (REPO / "requirements.txt").read_bytes()
    for must in ("app.py", "packages.txt", "LICENSE", "webapp/ui/page.py", "classifier/models/fer_mini_xception.onnx",
                 "tracker/models/face_detection_short_range.tflite", "tracker/models/face_detection_yunet_2023mar.onnx",
                 "classifier/specs/ferplus-8.json"):
        assert must in tree, must
    # every wheel requirements.txt points at is in the tree (the Dockerfile copies them before pip)
    for line in tree["requirements.txt"].decode().splitlines():
        if line.startswith("./"):
            assert line[2:] in tree, line
    tops = {p.split("/")[0] for p in tree}
    assert not tops & {"tests", "testkit", "benchmarks", "tools", "deploy", ".ci", ".venv", ".cache"}, tops
    assert not [p for p in tree if "__pycache__" in p or p.endswith((".pyc", ".png"))]
    assert sorted(p for p in tree if p.startswith("third_party/")) == sorted(
        f"third_party/wheels/{w.name}" for w in (REPO / "third_party" / "wheels").glob("*.whl"))


def test_creates_the_space_and_uploads_exactly_the_tree(hub, tree, tmp_path):
    code, out, err = deploy(tmp_path, hub.url, "alice/emotions", "--private", "--hardware", "cpu-upgrade",
                            "--secret", "HF_TOKEN=hf_read_only", "--secret", "TURN_CREDENTIAL",
                            "--variable", "LIVE_MAX_STREAMS=2", extra_env={"TURN_CREDENTIAL": "from-env"})
    assert code == 0, out + err
    assert f"{hub.url}/spaces/alice/emotions" in out and "Note: no TURN" not in out
    repo = hub.api.repos["alice/emotions"]
    assert (repo["type"], repo["sdk"], repo["visibility"], repo["hardware"]) == ("space", "docker", "private",
                                                                                "cpu-upgrade")
    assert repo["files"] == tree  # exactly the dry-run tree, byte for byte
    assert len(repo["commits"]) == 1
    assert repo["secrets"] == {"HF_TOKEN": "hf_read_only", "TURN_CREDENTIAL": "from-env"}
    assert repo["variables"] == {"LIVE_MAX_STREAMS": "2"}
    paths = [f"{m} {p}" for m, p, _ in hub.api.calls]
    order = [paths.index(x) for x in ("POST /api/repos/create", "POST /api/spaces/alice/emotions/secrets",
                                      "POST /api/spaces/alice/emotions/variables",
                                      "POST /api/spaces/alice/emotions/commit/main")]
    assert order == sorted(order), paths  # secrets and variables are there before the first build
    assert "hf_read_only" not in out + err and "from-env" not in out + err  # secret values are never printed


def test_organisation_bare_name_and_update(hub, tree, tmp_path):
    code, out, err = deploy(tmp_path, hub.url, "emotion-lab/emotions")
    assert code == 0, out + err
    assert "Note: no TURN secret" in out  # the live tab's requirement is said, not hidden
    assert hub.api.repos["emotion-lab/emotions"]["visibility"] == "public"  # unless --private
    code, out, err = deploy(tmp_path, hub.url, "emotions")  # a bare name goes under the user
    assert code == 0 and "alice/emotions" in hub.api.repos, out + err
    # again without --update: refused, nothing changed
    hub.api.repos["alice/emotions"]["files"]["old_file.py"] = b"stale"
    code, out, err = deploy(tmp_path, hub.url, "alice/emotions")
    assert code == 1 and "already exists" in err and "--update" in err, out + err
    assert len(hub.api.repos["alice/emotions"]["commits"]) == 1
    # --update: one more commit; files of the old version not in the tree are removed in it
    code, out, err = deploy(tmp_path, hub.url, "alice/emotions", "--update", "--hardware", "cpu-basic",
                            "--secret", "HF_TOKEN=t2")
    assert code == 0, out + err
    repo = hub.api.repos["alice/emotions"]
    assert repo["files"] == tree and len(repo["commits"]) == 2
    assert repo["hardware"] == "cpu-basic" and repo["secrets"] == {"HF_TOKEN": "t2"}
    assert ("POST", "/api/spaces/alice/emotions/hardware", {"flavor": "cpu-basic"}) in hub.api.calls


def test_token_from_saved_login(hub, tree, tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "token").write_text("tok-alice")
    code, out, err = deploy(tmp_path, hub.url, "alice/saved", token=None)
    assert code == 0, out + err
    assert hub.api.repos["alice/saved"]["files"] == tree


def test_missing_or_invalid_token(hub, tmp_path):
    code, out, err = deploy(tmp_path, hub.url, "alice/emotions", token=None)
    assert code == 1 and "No Hugging Face token" in err and "HF_TOKEN" in err and "hf auth login" in err, err
    assert hub.api.calls == []  # nothing was sent
    code, out, err = deploy(tmp_path, hub.url, "alice/emotions", token="tok-wrong")
    assert code == 1 and "token was refused" in err, err
    assert hub.api.repos == {} and "Traceback" not in err


def test_a_namespace_of_someone_else(hub, tmp_path):
    code, out, err = deploy(tmp_path, hub.url, "bob/emotions")  # alice's token
    assert code == 1 and "cannot create Spaces under 'bob'" in err and "alice/emotions" in err, err
    assert hub.api.repos == {} and not [c for c in hub.api.calls if c[1] == "/api/repos/create"]
    # bob's own Space of that name exists; alice cannot take it over with --update either
    code, _, _ = deploy(tmp_path, hub.url, "bob/emotions", token="tok-bob")
    assert code == 0
    code, out, err = deploy(tmp_path, hub.url, "bob/emotions", "--update")
    assert code == 1 and "cannot create Spaces under 'bob'" in err
    assert len(hub.api.repos["bob/emotions"]["commits"]) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_network_failures_leave_nothing_claiming_success(hub, tree, tmp_path):
    code, out, err = deploy(tmp_path, f"http://127.0.0.1:{_closed_port()}", "alice/emotions")
    assert code == 1 and "Cannot reach the Hub" in err and "Nothing was uploaded" in err, err
    assert "Done" not in out and "Traceback" not in err
    # the connection drops during the commit of a new Space: the Space is deleted again
    hub.api.fail["commit"] = "drop"
    code, out, err = deploy(tmp_path, hub.url, "alice/emotions", "--secret", "HF_TOKEN=x")
    assert code == 1 and "deleted again" in err, out + err
    assert "alice/emotions" not in hub.api.repos and "Done" not in out
    # ... and during an update: the previous version stays, whole
    hub.api.fail.clear()
    assert deploy(tmp_path, hub.url, "alice/emotions")[0] == 0
    hub.api.fail["commit"] = "drop"
    code, out, err = deploy(tmp_path, hub.url, "alice/emotions", "--update")
    assert code == 1 and "keeps its previous version" in err, out + err
    assert hub.api.repos["alice/emotions"]["files"] == tree and len(hub.api.repos["alice/emotions"]["commits"]) == 1


def test_bad_arguments(tmp_path):
    code, out, err = deploy(tmp_path, "http://127.0.0.1:9", "alice/emotions", "--variable", "NOVALUE")
    assert code != 0 and "KEY=VALUE" in err
    code, out, err = deploy(tmp_path, "http://127.0.0.1:9", "alice/emotions", "--secret", "UNSET_SECRET_XYZ")
    assert code != 0 and "$UNSET_SECRET_XYZ is not set" in err
    code, out, err = deploy(tmp_path, "http://127.0.0.1:9", "not a name")
    assert code != 0 and "not a Space name" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    code, out, err = deploy(tmp_path, "http://127.0.0.1:9", "a/b", "--dry-run", str(tmp_path / "full"))
    assert code == 1 and "not empty" in err


def test_only_what_git_tracks_is_shipped(tmp_path):
    """In a small git repository: an untracked file in a product folder is left out (and named),
    caches never ship, and a repository without git (an archive) ships what is on disk."""
    from deploy.tree import build_tree, space_files, untracked

    for rel in ("app.py", "LICENSE", "requirements.txt", "packages.txt", "docs/API.md", "deploy/Dockerfile",
                "webapp/ui/page.py", "classifier/specs/a.json", "third_party/wheels/x-1-py3-none-any.whl",
                "tests/test_x.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "Space.md").write_text("---\nsdk: docker\napp_port: 7860\n---\n# card\n")
    (tmp_path / "deploy" / "Dockerfile").write_text("FROM python:3.11-slim\nEXPOSE 7860\nCMD [\"python\", \"app.py\"]\n")
    no_git = set(space_files(tmp_path))
    assert "classifier/specs/a.json" in no_git and "tests/test_x.py" not in no_git
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    (tmp_path / "classifier" / "specs" / "mine.json").write_text("{}")
    (tmp_path / "webapp" / "__pycache__").mkdir()
    (tmp_path / "webapp" / "__pycache__" / "ui.cpython-311.pyc").write_bytes(b"\0")
    files = build_tree(tmp_path / "out", repo=tmp_path)
    assert "classifier/specs/mine.json" not in files and "classifier/specs/a.json" in files
    assert untracked(tmp_path) == ["classifier/specs/mine.json"]
    assert not [f for f in files if "__pycache__" in f]
    assert set(files) == no_git
