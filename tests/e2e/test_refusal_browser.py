"""What a person sees when the server refuses a request for fairness (``429``), in a real headless
Chromium at desktop and phone sizes: the Image tab, an address over its request budget.

The app's per-address bucket is set to one analysis (no refill during the test) for the test's
duration: the first photo is analysed, the second is refused.  The page must say why, in words
(the server's own sentence, with how long to wait), and analyse again once the budget is back.
Screenshots: ``refused-desktop.png`` / ``refused-phone.png`` (``SCREENSHOT_DIR`` or the test's folder).
"""
from __future__ import annotations

import time

import pytest

from testkit.browser import CHROMIUM, DESKTOP, PHONE, analyse_photo, chromium_args, screenshot_dir, wait

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
SIZES = {"desktop": DESKTOP, "phone": PHONE}


@pytest.fixture
def one_request_budget(live_app):
    """The browser tests' server, its request bucket cut to one request (restored afterwards)."""
    buckets = live_app[0].fairness.buckets
    saved = (buckets.burst, buckets.rate, buckets._b.copy())
    buckets.burst, buckets.rate = 1.0, 1.0 / 600
    buckets._b.clear()
    try:
        yield buckets
    finally:
        buckets.burst, buckets.rate = saved[:2]
        buckets._b.clear()
        buckets._b.update(saved[2])


@pytest.mark.parametrize("size", list(SIZES))
def test_refused_request_is_explained_and_the_page_recovers(live_app, tmp_path, size, one_request_budget):
    from playwright.sync_api import sync_playwright

    from testkit.assets import feat_data

    _, url = live_app
    shots = screenshot_dir(tmp_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(), headless=True)
        try:
            page = browser.new_page(viewport=SIZES[size])
            page.goto(url)
            page.get_by_role("tab", name="Image").click()
            line = analyse_photo(page, feat_data() / "multi_face.jpg")
            assert line and line.startswith("5 faces:"), line
            refused_before = one_request_budget.refused

            page.locator("#image-in input[type=file]").set_input_files(str(feat_data() / "single_face.jpg"))
            said = wait(lambda: "Too many requests from your address" in (b := page.inner_text("body")) and b, 30)
            assert said, page.inner_text("body")[:600]
            assert one_request_budget.refused > refused_before
            assert "please wait" in said and "Traceback" not in said
            time.sleep(1.5)  # the toast settled
            page.screenshot(path=str(shots / f"refused-{size}.png"), full_page=False)

            # budget back (as after the wait the message names): the same page analyses again
            one_request_budget._b.clear()
            # another photo, 1 face: the 5-face line still on screen is not taken for its answer
            line = analyse_photo(page, feat_data() / "0-f1-su-ph.jpg", starts="1 face")
            assert line, page.inner_text("#image-summary")
        finally:
            browser.close()
