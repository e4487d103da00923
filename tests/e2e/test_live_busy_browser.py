"""The "server busy" notice as people see it, in a real headless Chromium with a real group as its
fake webcam: one user streams (the limit is lowered to 1 for the test), a second user at desktop size
and a third on a phone are told their place in line, on their own dimmed video and in the notice
under it; when the first stops, the second starts by itself and the third moves up; when the second
closes the tab, the third starts within seconds; a user's "Server busy" toast is closed once their
stream runs.

Screenshots go to ``SCREENSHOT_DIR`` (default: the test's temporary folder); ``UPDATE_SCREENSHOT=1``
also writes docs/live-busy.png and docs/live-busy-phone.png.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from testkit.browser import (CHROMIUM, DESKTOP, PHONE, chromium_args, group_scene_y4m, screenshot_dir, start_live,
                             stop_live, wait)

from webapp.ui.live_tab import CLOSE_BUSY_TOASTS_JS

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
REPO = Path(__file__).resolve().parents[2]


def _notice(page) -> str:
    try:
        return page.inner_text("#live-notice", timeout=1000)
    except Exception:
        return ""


def _busy_toasts(page) -> int:
    """"Server busy" toasts on screen."""
    return page.locator('[data-testid="toast-body"]', has_text="Server busy").count()


def test_busy_notice_tells_the_place_in_line(live_app, tmp_path):
    from playwright.sync_api import sync_playwright

    services, url = live_app
    reg = services.registry
    shots = screenshot_dir(tmp_path)
    y4m = group_scene_y4m(tmp_path / "group.y4m")
    assert wait(lambda: not reg.active, 40), f"streams of earlier tests still open: {list(reg.active)}"
    limit = reg.max_active
    reg.max_active = 1
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(y4m), headless=True)
            try:
                first = start_live(browser, url, DESKTOP)
                assert wait(lambda: len(reg.active) == 1, 30), "the first user's stream did not start"
                second = start_live(browser, url, DESKTOP)
                assert wait(lambda: "next in line" in _notice(second), 30), f"second user sees {_notice(second)!r}"
                third = start_live(browser, url, PHONE)
                assert wait(lambda: "number 2 in line (1 ahead of you)" in _notice(third), 30), \
                    f"third user sees {_notice(third)!r}"
                assert "Server busy: the only live stream slot is taken." in _notice(second)
                assert len(reg.active) == 1 and len(reg.waiting) == 2
                second.wait_for_timeout(1500)  # a few dimmed frames on screen
                second.screenshot(path=str(shots / "live-busy-desktop.png"))
                third.screenshot(path=str(shots / "live-busy-phone.png"), full_page=True)
                if os.environ.get("UPDATE_SCREENSHOT") == "1":
                    second.screenshot(path=str(REPO / "docs" / "live-busy.png"))
                    third.screenshot(path=str(REPO / "docs" / "live-busy-phone.png"))
                # the page's hook closes "Server busy" toasts, but not while the server says this user waits
                assert _busy_toasts(third) == 1, "no 'Server busy' toast"
                state = third.input_value("#live-state textarea, #live-state input")
                assert state == "waiting", f"the page was told {state!r} while waiting"
                third.evaluate(CLOSE_BUSY_TOASTS_JS, state)
                third.wait_for_timeout(300)
                assert _busy_toasts(third) == 1
                third.evaluate(CLOSE_BUSY_TOASTS_JS, "running")
                assert wait(lambda: _busy_toasts(third) == 0, 2), "the hook did not close the toast"
                # the first user stops: the second starts by itself, the third is next
                waiting_second = next(iter(reg.waiting))
                stop_live(first)
                assert wait(lambda: waiting_second in reg.active, 30), "the first in line did not start"
                assert wait(lambda: "next in line" in _notice(third), 15), f"third user sees {_notice(third)!r}"
                assert wait(lambda: not second.locator("#live-notice").is_visible()
                            or "busy" not in _notice(second), 15), f"second user still sees {_notice(second)!r}"
                assert "waiting in line" in third.inner_text("#live-stats")
                assert wait(lambda: _busy_toasts(second) == 0, 10), "the second user's 'Server busy' toast stays"
                # the second user closes the tab without pressing Stop: the slot goes to the third within
                # seconds (LIVE_SILENT_S), not after the 30 s in which a lost connection is otherwise reaped
                waiting_third = next(iter(reg.waiting))
                second.close()
                assert wait(lambda: waiting_third in reg.active, 20), "a closed tab kept its slot"
                assert wait(lambda: not third.locator("#live-notice").is_visible()
                            or "busy" not in _notice(third), 15), f"third user still sees {_notice(third)!r}"
                third.wait_for_timeout(1500)
                third.screenshot(path=str(shots / "live-after-closed-tab-phone.png"), full_page=True)
                stop_live(third)
                assert wait(lambda: not reg.active and not reg.waiting, 40), "streams not released after Stop"
            finally:
                browser.close()
    finally:
        reg.max_active = limit
