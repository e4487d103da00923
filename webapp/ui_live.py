"""The Live tab: webcam over WebRTC, preset and sliders, stats, tracks table, timeline chart, download.

The sliders show the chosen preset's values: their initial values come from
the default preset's config, and choosing another preset sets them to that
preset's values (:func:`preset_slider_values`).  What the stream runs is
``preset(name, **slider values)`` (:class:`webapp.session.LiveControls`).
"""
from __future__ import annotations

import logging

import gradio as gr
from fastrtc import WebRTC

from pipeline import DEFAULT_PRESET, preset

from . import settings as S
from .charts import stats_markdown, timeline_plot_frame, tracks_frame
from .rtc import rtc_configuration
from .services import Services
from .session import SLIDER_RANGES
from .stream import hook_cleanup, stable_handler

log = logging.getLogger(__name__)

#: How each slider of SLIDER_RANGES is shown: field -> (label, step).
_SLIDERS = {"half_life_s": ("Smoothing half-life (s)", 0.05), "min_face": ("Minimum face size (px)", 2),
            "min_score": ("Detection threshold", 0.05)}


def preset_slider_values(name: str | None) -> tuple:
    """The sliders' values (half-life s, minimum face px, detection threshold) of preset ``name``."""
    flat = preset(name or None).flat()
    return tuple(flat[k] for k in SLIDER_RANGES)


class LiveTab:
    """The Live tab's components and event handlers for one app's :class:`Services`."""

    def __init__(self, services: Services):
        self.services = services
        self.registry = services.registry

    def _session(self, webrtc_id, last_id):
        sid = webrtc_id if isinstance(webrtc_id, str) and webrtc_id else last_id
        return sid, (self.registry.get(sid) if sid else None)

    def tick(self, webrtc_id, last_id, last_version):
        """Every 0.5 s: stats, notice, tracks table and chart of the page's connection (skipped if unchanged)."""
        sid, sess = self._session(webrtc_id, last_id)
        if sess is None and self.registry.is_waiting(sid):  # turned away: LIVE_MAX_STREAMS streams run
            return (gr.skip(), gr.update(value=f"⚠️ {self.registry.busy_message()}", visible=True)) + (gr.skip(),) * 4
        if sess is None or (sid == last_id and sess.version == last_version):
            return (gr.skip(),) * 6
        info = sess.info()
        notice = f"⚠️ {info['notice']}" if info.get("notice") else ""
        df, classes = sess.recent(30.0)
        plot = timeline_plot_frame(df, classes)
        # (an empty frame given to a LinePlot breaks its later updates in gradio 5.50: skip instead)
        return (stats_markdown(info), gr.update(value=notice, visible=bool(notice)),
                tracks_frame(sess.last_result, sess.classes), plot if len(plot) else gr.skip(), sid, sess.version)

    def download(self, webrtc_id, last_id):
        _, sess = self._session(webrtc_id, last_id)
        files = sess.snapshot_files() if sess is not None else []
        if not files:
            raise gr.Error("Nothing recorded yet: start the live stream first (timelines of ended streams are kept "
                           f"for {S.LIVE_KEEP_S / 60:.0f} minutes).")
        return files

    def model_notice(self, model):
        state, warn = self.services.loader.wait(model, timeout=60)
        if state == "failed":
            return gr.update(value=f"⚠️ {warn}", visible=True)
        return gr.update(value="", visible=False)

    def build(self) -> WebRTC:
        """The tab's components and events (inside a ``gr.Blocks``); returns the WebRTC component."""
        rtc_client, rtc_server, rtc_about = rtc_configuration()
        log.info("WebRTC: %s", rtc_about)
        start = preset_slider_values(DEFAULT_PRESET)
        last_id, last_version = gr.State(None), gr.State(-1)
        with gr.Row():
            with gr.Column(scale=3):
                webrtc = WebRTC(label="Webcam (analysed on the server)", show_label=False, mode="send-receive",
                                modality="video", rtc_configuration=rtc_client, server_rtc_configuration=rtc_server,
                                mirror_webcam=False, elem_id="live-video", full_screen=False, height=480,
                                button_labels={"start": "Start webcam", "stop": "Stop", "waiting": "Connecting"},
                                track_constraints={"width": {"ideal": 640}, "height": {"ideal": 480},
                                                   "frameRate": {"ideal": 30}, "facingMode": "user"})
                stats = gr.Markdown("Press the button on the video to start your webcam.", elem_id="live-stats")
                notice = gr.Markdown("", visible=False, elem_classes="notice", elem_id="live-notice")
                with gr.Accordion("Settings (apply immediately, no restart)", open=True):
                    with gr.Row():
                        model = gr.Dropdown(S.model_choices(), value=S.DEFAULT_UI_MODEL, label="Model")
                        scene = gr.Radio(S.preset_choices(), value=DEFAULT_PRESET, label="Preset",
                                         elem_id="live-preset")
                    with gr.Row():
                        sliders = [gr.Slider(lo, hi, value=v, step=_SLIDERS[k][1], label=_SLIDERS[k][0],
                                             elem_id=f"live-{k.replace('_', '-')}")
                                   for (k, (lo, hi, _)), v in zip(SLIDER_RANGES.items(), start)]
            with gr.Column(scale=2):
                table = gr.DataFrame(tracks_frame(None, []), label="Current tracks (smoothed probabilities)",
                                     elem_id="live-tracks", interactive=False, wrap=True)
                plot = gr.LinePlot(None, x="time_s", y="prob", color="series", label="Timeline, last 30 s",
                                   x_title="time (s)", y_title="probability", y_lim=[0, 1], height=340,
                                   elem_id="live-plot")
                dl = gr.Button("Download the timeline recorded so far", elem_id="live-download")
                files = gr.File(label="Timeline files (CSV, JSON, summary)", file_count="multiple", interactive=False)
        webrtc.stream(stable_handler(self.services.handler, skip_frames=True),
                      inputs=[webrtc, model, scene, *sliders], outputs=[webrtc],
                      # LIVE_MAX_STREAMS are analysed (registry.max_active); LIVE_BUSY_SLOTS more connect only
                      # to be told "server busy"; fastrtc refuses any further connection.
                      concurrency_limit=S.LIVE_MAX_STREAMS + S.LIVE_BUSY_SLOTS, time_limit=S.LIVE_TIME_LIMIT_S)
        hook_cleanup(webrtc, self.registry)
        scene.change(preset_slider_values, inputs=[scene], outputs=sliders, show_api=False, queue=False)
        gr.Timer(0.5).tick(self.tick, inputs=[webrtc, last_id, last_version],
                           outputs=[stats, notice, table, plot, last_id, last_version],
                           show_progress="hidden", show_api=False, queue=False)
        model.change(self.model_notice, inputs=[model], outputs=[notice], show_api=False)
        dl.click(self.download, inputs=[webrtc, last_id], outputs=[files], show_api=False)
        return webrtc
