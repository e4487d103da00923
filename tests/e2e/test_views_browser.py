"""What a person sees, in a real headless Chromium at desktop (1366x768) and phone (390x844) sizes:
the Live tab with a real group as its fake webcam, the Image tab with a real group photo, the Video
tab with a real face video encoded as MPEG-4 Part 2 (which browsers cannot play).

Each test takes full-page screenshots (``SCREENSHOT_DIR``, default: the test's temporary folder;
``UPDATE_SCREENSHOT=1`` writes the README's pictures to docs/) and asserts: no sideways scrolling
of the table or the page, the chart's legend inside the visible chart, "stopped" within 1 s of Stop,
no pending-timer text in the live panels, and no "not playable" error for a video FFmpeg reads.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from classifier.spec import DEFAULT_MODEL, builtin_specs
from testkit.browser import (
    CHROMIUM,
    CLICK_TO_TEXT_JS,
    DESKTOP,
    LEGEND_JS,
    PENDING_JS,
    PHONE,
    STOP_BUTTON,
    WIDTHS_JS,
    analyse_photo,
    chromium_args,
    group_scene_y4m,
    make_y4m,
    screenshot_dir,
    start_live,
    stop_live,
    wait,
)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
REPO = Path(__file__).resolve().parents[2]
SIZES = {"desktop": DESKTOP, "phone": PHONE}


def _no_sideways_scroll(page, *selectors):
    for sel in selectors:
        w = page.evaluate(WIDTHS_JS, sel)
        assert w is not None, f"{sel} is not on the page"
        assert w[0] <= w[1] + 1, f"{sel} scrolls sideways: content {w[0]} px in {w[1]} px"
    doc = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert doc[0] <= doc[1] + 1, f"the page scrolls sideways: {doc}"


def _legend_visible(page, sel, want_items):
    g = wait(lambda: (r := page.evaluate(LEGEND_JS, sel)) and r["items"] >= want_items and r, 10)
    assert g, f"{sel}: no chart legend with {want_items} entries: {page.evaluate(LEGEND_JS, sel)}"
    assert g["text_px"] >= 11, f"{sel}: the chart's legend text is {g['text_px']:.1f} px tall: too small to read"
    lx1, ly1, lx2, ly2 = g["legend"]
    for name in ("svg", "root"):
        x1, y1, x2, y2 = g[name]
        assert x1 - 1 <= lx1 and lx2 <= x2 + 1 and y1 - 1 <= ly1 and ly2 <= y2 + 1, f"legend {g['legend']} outside {name} {g[name]}"


@pytest.mark.parametrize("size", list(SIZES))
def test_live_view_reads_at_a_glance(live_app, tmp_path, size):
    """A group of six with default settings: a row per person by ID, a legend per person, honest status."""
    from playwright.sync_api import sync_playwright

    services, url = live_app
    reg = services.registry
    y4m = group_scene_y4m(tmp_path / "group.y4m")
    shots = screenshot_dir(tmp_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(y4m), headless=True)
        try:
            page = start_live(browser, url, SIZES[size])
            sess = wait(lambda: next((s for s in reg.active.values() if not s.closed), None), 30)
            assert sess is not None, "no WebRTC connection reached the handler"
            rows = wait(lambda: (n := page.locator("#live-tracks tbody tr").count()) >= 6 and n, 40)
            assert rows, f"the table shows {page.locator('#live-tracks tbody tr').count()} people, not 6"
            ids = [int(t.strip().lstrip("#")) for t in page.locator("#live-tracks tbody td:first-child").all_inner_texts()]
            assert ids == sorted(ids), f"rows not in ID order: {ids}"
            assert "stream live" in page.inner_text("#live-stats")

            # pending timers: none shown in the panels that refresh, sampled for 3 s
            seen = []
            for _ in range(30):
                seen += page.evaluate(PENDING_JS, ["#live-stats", "#live-tracks", "#live-plot"])
                texts = page.inner_text("#live-stats") + page.inner_text("#live-tracks")
                seen += re.findall(r"\b\d+\.\ds\b", texts)
                time.sleep(0.1)
            assert not seen, f"pending indicators flashed: {seen[:5]}"

            _no_sideways_scroll(page, "#live-tracks", "#live-tracks table")
            time.sleep(1.5)  # one more chart refresh
            _legend_visible(page, "#live-plot", 6)
            assert re.search(r"\d+ fps", page.inner_text("#live-stats"))  # the overlay's numbers: test_overlay.py
            page.screenshot(path=str(shots / f"live-group-{size}.png"), full_page=True)
            if os.environ.get("UPDATE_SCREENSHOT") == "1" and size == "desktop":
                page.screenshot(path=str(REPO / "docs" / "live-group.png"), full_page=True)

            page.evaluate(CLICK_TO_TEXT_JS, [STOP_BUTTON, "#live-stats", "stream stopped"])
            stop_live(page)
            took_ms = wait(lambda: page.evaluate("window.__clickToText"), 5, step=0.05)
            assert took_ms is not None and took_ms <= 1000, \
                f"status says {page.inner_text('#live-stats')!r} {took_ms} ms after the click on Stop"
        finally:
            browser.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_close_up_live_view(live_app, tmp_path, size):
    """One face filling much of the frame: the screenshot for README and the phone check."""
    from playwright.sync_api import sync_playwright

    from testkit.assets import feat_data

    _, url = live_app
    y4m = make_y4m(feat_data() / "WolfgangLanger_Pexels.mp4", tmp_path / "face.y4m", n_frames=120)
    shots = screenshot_dir(tmp_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(y4m), headless=True)
        try:
            page = start_live(browser, url, SIZES[size])
            assert wait(lambda: page.locator("#live-tracks tbody tr").count() >= 1, 40), "no person in the table"
            time.sleep(3.0)
            _no_sideways_scroll(page, "#live-tracks", "#live-tracks table")
            _legend_visible(page, "#live-plot", 1)
            page.screenshot(path=str(shots / f"live-closeup-{size}.png"), full_page=True)
            if os.environ.get("UPDATE_SCREENSHOT") == "1" and size == "desktop":
                page.screenshot(path=str(REPO / "docs" / "live.png"), full_page=True)
            # the settings: the model menu says which model runs, its version and test accuracy
            page.click("#live-settings button")
            about = builtin_specs()[DEFAULT_MODEL].about()
            assert wait(lambda: about in page.inner_text("#live-model"), 5), page.inner_text("#live-settings")
            page.locator("#live-model").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / f"live-settings-{size}.png"), full_page=True)
            stop_live(page)
        finally:
            browser.close()


def _mpeg4_part2(src: Path, dst: Path, frames: int = 60) -> Path:
    """A real face video re-encoded as MPEG-4 Part 2 in AVI (FFmpeg reads it; Chromium cannot play it)."""
    import av

    with av.open(str(src)) as c, av.open(str(dst), "w") as o:
        s = o.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
        for i, fr in enumerate(c.decode(video=0)):
            if i >= frames:
                break
            for p in s.encode(fr.reformat(640, 360, "yuv420p")):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    return dst


@pytest.mark.parametrize("size", list(SIZES))
def test_image_and_video_tabs(live_app, tmp_path, size):
    from playwright.sync_api import sync_playwright

    from testkit.assets import feat_data

    _, url = live_app
    shots = screenshot_dir(tmp_path)
    clip = _mpeg4_part2(feat_data() / "WolfgangLanger_Pexels.mp4", tmp_path / "clip_mpeg4.avi")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(), headless=True)
        try:
            page = browser.new_page(viewport=SIZES[size])
            page.goto(url)
            page.get_by_role("tab", name="Image").click()
            # the model menu says what the user gets: id, version, test accuracy, and follows the choice
            specs = builtin_specs()
            assert specs[DEFAULT_MODEL].about() in page.inner_text("#image-model")
            other = next(sid for sid in specs if sid != DEFAULT_MODEL)
            for sid in (other, DEFAULT_MODEL):
                page.click("#image-model input")
                page.get_by_role("option", name=re.compile("^" + re.escape(sid))).click()
                assert wait(lambda: specs[sid].about() in page.inner_text("#image-model"), 5), \
                    f"the menu's line did not follow the choice of {sid}: {page.inner_text('#image-model')!r}"
            line = analyse_photo(page, feat_data() / "multi_face.jpg")
            assert line and line.startswith("5 faces:"), line
            assert "Array(" not in page.inner_text("body")  # the raw JSON stays folded away
            _no_sideways_scroll(page, "#image-summary")
            page.screenshot(path=str(shots / f"image-{size}.png"), full_page=True)

            page.get_by_role("tab", name="Video").click()
            assert specs[DEFAULT_MODEL].about() in page.inner_text("#video-model")
            page.locator("#video-in input[type=file]").set_input_files(str(clip))
            time.sleep(1.0)
            body = page.inner_text("body").lower()
            assert "not playable" not in body and "error" not in body, body[:400]
            page.click("#video-process")
            note = wait(lambda: (t := page.inner_text("#video-summary")) and "frames analysed" in t and t, 120)
            assert note and "1 person: #1" in note, note
            assert "not playable" not in page.inner_text("body").lower()
            _legend_visible(page, "#video-plot", 1)
            _no_sideways_scroll(page, "#video-summary")
            time.sleep(1.0)
            page.screenshot(path=str(shots / f"video-{size}.png"), full_page=True)
            # a facial action across people: the chart's choice redraws it (her smile, 0-1)
            page.click("#video-chart-what input")
            page.get_by_role("option", name="Smile of each person (facial action)").click()
            assert wait(lambda: "smile of each person" in page.inner_html("#video-plot"), 10), "the chart did not switch to smiles"
            _legend_visible(page, "#video-plot", 1)
            _no_sideways_scroll(page, "#video-plot")
            page.screenshot(path=str(shots / f"video-smile-{size}.png"), full_page=True)
        finally:
            browser.close()
