"""A real yawn on video, fetched from a public repository at run time and cached; never committed.

Source: ``art/yawn_output_video.gif`` of the public GitHub repository ``iglaweb/HippoYD`` (a yawn
detector; the repository is Apache-2.0), at commit :data:`COMMIT`: 36 frames, 500x375, 80 ms a
frame (about real time: the detector's own frame counter drawn on it advances 41 frames at 30 per
second while the mouth is open over 18 of its frames), a man in a parked car who yawns once, from
about 0.7 s to 2.5 s, the mouth wide open from about 1.0 s to 2.2 s.  The footage is from YawDD
(S. Abtahi, M. Omidyeganeh, S. Shirmohammadi, B. Hariri: "YawDD: a yawning detection dataset",
ACM MMSys 2014), released for research with citation.  HippoYD drew its own overlay on it: a text
line and a small grey mouth crop in the top-left corner, away from the face.

The repository is read from ``$EMOTION_GIT_MIRRORS`` (default ``/work/.mirror``) as
``iglaweb+HippoYD/repo`` (a bare snapshot), ``iglaweb+HippoYD`` or ``HippoYD`` (a clone); the file is
checked against :data:`SHA256` and cached as ``$EMOTION_ASSETS/yawn-1/hippoyd_yawn.gif``.

    from testkit.yawn import yawn_video, available
    path = yawn_video()      # the GIF (PyAV decodes it; frame times in seconds)
"""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from .assets import CACHE
from .hardfaces import MIRRORS

REPO_NAME = "iglaweb/HippoYD"
COMMIT = "da2c40be8017c43a7b7b6c029e2df30cf7d54932"
PATH = "art/yawn_output_video.gif"
SHA256 = "bb8205340aa8e60e8af062099f6be7ce593f876ae89d67c418cd665cc48779bb"
LICENCE = ("repository Apache-2.0; footage from YawDD (Abtahi et al., ACM MMSys 2014), released for research "
           "with citation; used as test data only, never committed or redistributed")
#: When the mouth is open (by eye, on the decoded frames' times): the yawn, and its wide-open part.
YAWN_S = (0.7, 2.5)
WIDE_OPEN_S = (1.0, 2.2)


def _git_dir() -> Path | None:
    owner, name = REPO_NAME.split("/")
    for cand in (MIRRORS / f"{owner}+{name}" / "repo", MIRRORS / f"{owner}+{name}", MIRRORS / name):
        if cand.exists() and subprocess.run(["git", "-C", str(cand), "cat-file", "-e", f"{COMMIT}^{{commit}}"],
                                            capture_output=True).returncode == 0:
            return cand
    return None


def cache_path() -> Path:
    return CACHE / "yawn-1" / "hippoyd_yawn.gif"


def available() -> str | None:
    """None when the yawn can be had here (cached, or the repository at hand), else why not."""
    if cache_path().is_file() or _git_dir() is not None:
        return None
    return (f"the real yawn needs the public GitHub repository {REPO_NAME} at commit {COMMIT}: clone it into "
            f"{MIRRORS / REPO_NAME.replace('/', '+')} (or set EMOTION_GIT_MIRRORS to a folder holding it)")


def yawn_video() -> Path:
    """The cached GIF, fetched and checked on first use."""
    out = cache_path()
    if out.is_file() and hashlib.sha256(out.read_bytes()).hexdigest() == SHA256:
        return out
    git = _git_dir()
    if git is None:
        raise RuntimeError(available())
    data = subprocess.run(["git", "-C", str(git), "show", f"{COMMIT}:{PATH}"], capture_output=True, check=True).stdout
    got = hashlib.sha256(data).hexdigest()
    if got != SHA256:
        raise RuntimeError(f"{PATH} of {REPO_NAME}@{COMMIT[:12]} has sha256 {got}, expected {SHA256}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out
