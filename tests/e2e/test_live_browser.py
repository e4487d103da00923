"""End to end: a real headless Chromium streams a real face video as its webcam to the app
over WebRTC and gets annotated frames back.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skipped
with a reason when it is not installed.  What the pages look like is checked in
test_views_browser.py.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from testkit.browser import CHROMIUM, group_scene_y4m, make_y4m
from testkit.browser import chromium_args as _chromium_args
from testkit.browser import start_live as _start_live
from testkit.browser import wait as _wait

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


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
            from webapp.live.session import SLIDER_RANGES
            from webapp.ui.live_tab import preset_slider_values

            page.get_by_text("Settings (apply immediately").click()  # closed by default: the defaults are the product
            page.locator("#live-preset").wait_for(state="visible", timeout=10000)
            page.locator("#live-preset").get_by_text(PRESETS["steady"].title).click()
            want = preset("steady", model=services.settings.default_ui_model,
                          detect_every=services.settings.live_detect_every,
                          **dict(zip(SLIDER_RANGES, preset_slider_values("steady"))))
            assert _wait(lambda: sess.config == want, 15), f"the stream runs {sess.config}, not the steady preset"
            assert _wait(lambda: "preset steady" in page.inner_text("#live-stats"), 10), page.inner_text("#live-stats")

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


def test_live_finds_every_face_of_a_group_with_default_settings(live_app, tmp_path):
    """Live with no setting touched: five small faces and a close-up, each with its own ID."""
    from playwright.sync_api import sync_playwright

    from pipeline import preset

    services, url = live_app
    y4m = group_scene_y4m(tmp_path / "group.y4m")
    args = _chromium_args(y4m)
    reg = services.registry
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = _start_live(browser, url, {"width": 1366, "height": 768})
            sess = _wait(lambda: next((s for s in reg.active.values() if not s.closed), None), 30)
            assert sess is not None, "no WebRTC connection reached the handler"
            assert _wait(lambda: sess.stats.frames >= 60, 40), f"only {sess.stats.frames} frames processed"
            assert sess.config.detection == preset(detect_every=services.settings.live_detect_every).detection  # nothing was set
            seen = _wait(lambda: (r := sess.last_result) is not None and int((~r.predicted).sum()) >= 6 and r, 20)
            r = sess.last_result
            assert seen, f"the live view finds {int((~r.predicted).sum())} of 6 faces: boxes {r.boxes.round().tolist()}"
            assert len(set(r.track_ids.tolist())) == len(r)
            page.locator('#live-video button[aria-label="start stream"]').click()
        finally:
            browser.close()
