"""Every model the product names is pinned: a Hub model by repo, path in the repo, revision, size and
sha256; a shipped model by size and sha256, which match the file in the repository.  What the pins
could be checked against is in each spec's ``pin_source`` (docs/models.md)."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from classifier.spec import builtin_specs

REPO = Path(__file__).resolve().parents[1]
SPECS = builtin_specs()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_spec_is_pinned(name):
    s = SPECS[name]
    assert re.fullmatch(r"[0-9a-f]{64}", s.sha256), f"{name}: sha256 {s.sha256!r}"
    assert isinstance(s.size, int) and s.size > 0
    assert s.pin_source.strip(), f"{name}: say where the pin was read"
    assert s.license.strip()
    if s.source == "hub":
        assert re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", s.repo_id), s.repo_id
        assert s.filename.endswith(".onnx") and not s.filename.startswith("/") and ".." not in s.filename.split("/")
        assert s.revision == "main" or re.fullmatch(r"[0-9a-f]{40}", s.revision), \
            f"{name}: a branch name other than main, or a short commit, is not a pin: {s.revision!r}"
    else:
        p = s.embedded_path()
        assert p.stat().st_size == s.size
        assert hashlib.sha256(p.read_bytes()).hexdigest() == s.sha256


def test_the_space_card_names_what_the_app_downloads():
    card = (REPO / "Space.md").read_text()
    front = card.split("---")[1]
    listed = re.findall(r"^\s*-\s*(\S+)\s*$", front.split("models:")[1].split(":")[0], re.M)
    hub = sorted({s.repo_id for s in SPECS.values() if s.source == "hub"})
    assert sorted(listed) == hub


def test_a_spec_with_a_malformed_pin_is_refused():
    from classifier.spec import ModelSpec

    d = SPECS["fer-mini-xception"].to_dict()
    with pytest.raises(ValueError, match="sha256"):
        ModelSpec.from_dict({**d, "sha256": "abc"})
