"""The whole page: :func:`build_demo` puts the Live, Image and Video tabs and the API endpoints
together; :func:`launch` starts the server with the app's limits.

Neither building nor importing starts a thread or loads a model; the
housekeeping threads start with :meth:`webapp.services.Services.start_background`
(``app.py`` calls it right before :func:`launch`).
"""
from __future__ import annotations

import logging
import warnings

import gradio as gr

from . import httpguard
from . import settings as S
from .asgi_guard import GuardMiddleware
from .charts import CSS as CHART_CSS
from .services import Services
from .ui_live import LiveTab
from .ui_media import VideoTab, build_api, build_image_tab, hide_internal_endpoints

# gradio 5.50 announces gradio 6 renames (css=, show_api=); fastrtc 0.0.34 needs gradio<6.
warnings.filterwarnings("ignore", message=r".*(The 'css' parameter|The 'show_api' parameter).*")
log = logging.getLogger(__name__)

INTRO = """# Multi-face emotion recognition
Every face gets a box in its own colour and a stable ID, with its smoothed top emotion beside it (close-ups
also get a bar per emotion); the same colour marks the person in the table and the chart. **Live**: your webcam, analysed on the server in real time. **Image** / **Video**: upload a file.
**Preset**: *Standard* (the default: labels follow expressions quickly) or *Steady* (calmer labels, for
recordings); both find every face, near or far. API (gradio_client): `/analyze_image`, `/analyze_video` - see docs/API.md."""

CSS = """
#live-video video { max-height: 520px; }
@media (max-width: 640px) { #live-video { height: auto !important; min-height: 0 !important; } }
.notice { color: #b45309; }
.panel-title p { margin: 4px 0 0 0; }
/* the live panels refresh several times a second: never show a pending timer on them */
#live-stats > .wrap, #live-tracks > .wrap, #live-plot > .wrap, #live-notice > .wrap { display: none !important; }
""" + CHART_CSS


def build_demo(services: Services | None = None) -> gr.Blocks:
    """The app's ``gr.Blocks`` for ``services`` (new ones if None); starts nothing."""
    services = services or Services()
    # Gradio's file cache (uploads, returned files) is swept every 10 min of files older than OUTPUT_KEEP_S.
    with gr.Blocks(title="Multi-face emotion recognition", css=CSS,
                   delete_cache=(int(min(600, S.OUTPUT_KEEP_S)), int(S.OUTPUT_KEEP_S))) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Live", id="live"):
            LiveTab(services).build()
        with gr.Tab("Image", id="image"):
            build_image_tab()
        video = VideoTab(services)
        with gr.Tab("Video", id="video"):
            video.build()
        build_api(video)
        hide_internal_endpoints(demo)
    return demo


def launch(demo: gr.Blocks, services: Services, **kwargs):
    """``demo.queue(...).launch(...)`` with the app's queue, upload limit and the folders of ``services``.

    Hostile clients: slow headers and bodies are cut off (:mod:`.httpguard`); ``file=<URL>``
    redirects are refused and errors reach clients as one sentence, never a traceback
    (:mod:`.asgi_guard`).
    """
    from starlette.middleware import Middleware

    from common.compat import check_versions

    check_versions()  # the patches below were written for exact versions: refuse others, clearly
    httpguard.install()
    app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
    app_kwargs["middleware"] = [*app_kwargs.get("middleware", ()), Middleware(GuardMiddleware)]
    return demo.queue(default_concurrency_limit=2, max_size=S.QUEUE_MAX_SIZE).launch(
        max_file_size=f"{S.MAX_UPLOAD_MB}mb",
        allowed_paths=[str(services.registry.live_dir), str(services.output_dir)],
        app_kwargs=app_kwargs,
        **kwargs,
    )
