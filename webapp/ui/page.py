"""The whole page: :func:`build_page` puts the Live, Image and Video tabs and the API endpoints of one
:class:`~webapp.server.Server` together (call it through ``Server.build_demo()``).

Neither building nor importing starts a thread or loads a model.
"""
from __future__ import annotations

import logging
import warnings

import gradio as gr

from .charts import CSS as CHART_CSS
from .live_tab import LiveTab
from .media_tabs import ImageTab, VideoTab, build_api, hide_internal_endpoints

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
#live-state { display: none !important; }
@media (max-width: 640px) { #live-video { height: auto !important; min-height: 0 !important; } }
.notice { color: #b45309; }
.panel-title p { margin: 4px 0 0 0; }
/* the live panels refresh several times a second: never show a pending timer on them */
#live-stats > .wrap, #live-tracks > .wrap, #live-plot > .wrap, #live-notice > .wrap { display: none !important; }
""" + CHART_CSS


def build_page(server) -> gr.Blocks:
    """The app's ``gr.Blocks`` for ``server`` (a :class:`webapp.server.Server`); starts nothing.

    Gradio's own ``delete_cache`` is off: the server's retention sweeper removes old files from Gradio's
    cache with everything else (:mod:`webapp.guards.retention`)."""
    with gr.Blocks(title="Multi-face emotion recognition", css=CSS) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Live", id="live"):
            LiveTab(server).build()
        image = ImageTab(server)
        with gr.Tab("Image", id="image"):
            image.build()
        video = VideoTab(server)
        with gr.Tab("Video", id="video"):
            video.build()
        build_api(server, image, video)
        hide_internal_endpoints(demo)
    return demo
