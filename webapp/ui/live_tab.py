"""The Live tab: webcam over WebRTC, preset and sliders, stats, tracks table, timeline chart, download.

The sliders show the chosen preset's values: their initial values come from
the default preset's config, and choosing another preset sets them to that
preset's values (:func:`preset_slider_values`).  What the stream runs is
``preset(name, **slider values)`` (:class:`webapp.live.session.LiveControls`).
"""
from __future__ import annotations

import logging

import gradio as gr
from fastrtc import WebRTC

from pipeline import DEFAULT_PRESET, preset

from ..live.handler import hook_cleanup, stable_handler
from ..live.rtc import rtc_configuration
from ..live.session import SLIDER_RANGES
from ..settings import preset_choices
from .charts import chart_choices, live_chart_html, stats_markdown, tracks_html
from .models_menu import model_menu
from .svgchart import TOP

log = logging.getLogger(__name__)

#: How each slider of SLIDER_RANGES is shown: field -> (label, step).
_SLIDERS = {"half_life_s": ("Smoothing half-life (s)", 0.05), "min_face": ("Minimum face size (px)", 2),
            "min_score": ("Detection threshold", 0.05)}


def preset_slider_values(name: str | None) -> tuple:
    """The sliders' values (half-life s, minimum face px, detection threshold) of preset ``name``."""
    flat = preset(name or None).flat()
    return tuple(flat[k] for k in SLIDER_RANGES)


#: Page JavaScript: close the "Server busy" toasts on screen once the server says this connection is not
#: waiting (its argument: the registry's state for the connection, "waiting" or another).  The page decides
#: nothing: the state comes from ``SessionRegistry.status``.
CLOSE_BUSY_TOASTS_JS = """(state) => {
  if (state === "waiting") return;
  document.querySelectorAll('[data-testid="toast-body"]').forEach((t) => {
    if (t.innerText.includes("Server busy")) t.querySelector('[data-testid="toast-close"]')?.click();
  });
}"""


class LiveTab:
    """The Live tab's components and event handlers for one :class:`~webapp.server.Server`."""

    def __init__(self, server):
        self.server = server
        self.settings = server.settings
        self.registry = server.registry

    def _session(self, webrtc_id, last_id):
        sid = webrtc_id if isinstance(webrtc_id, str) and webrtc_id else last_id
        return sid, (self.registry.get(sid) if sid else None)

    def tick(self, webrtc_id, last_id, last_key):
        """Every 0.25 s: stats, notice, tracks table and the connection's state (from the registry) of the
        page's connection (skipped if unchanged)."""
        sid, sess = self._session(webrtc_id, last_id)
        status = self.registry.status(sid)
        if status["state"] == "waiting":  # turned away: live_max_streams streams run
            waiting = f"● **waiting in line** · place {status['place']}"  # the notice below says why
            return (waiting, gr.update(value=f"⚠️ {status['message']}", visible=True)) + (gr.skip(),) * 3 + (
                "waiting",)
        if sess is None:
            return (gr.skip(),) * 5 + (status["state"],)
        info = sess.info()
        key = f"{sid}/{sess.version}/{info['state']}"
        if key == last_key:
            return (gr.skip(),) * 5 + (status["state"],)
        notice = f"⚠️ {info['notice']}" if info.get("notice") else ""
        return (stats_markdown(info), gr.update(value=notice, visible=bool(notice)),
                tracks_html(sess.last_result), sid, key, status["state"])

    def chart(self, webrtc_id, last_id, what, last_key):
        """Every second (and when the choice changes): the timeline chart of the last 30 s."""
        sid, sess = self._session(webrtc_id, last_id)
        if sess is None:
            return gr.skip(), gr.skip()
        key = f"{sid}/{sess.version}/{what}"
        if key == last_key:
            return gr.skip(), gr.skip()
        df, classes = sess.recent(30.0)
        return live_chart_html(df, classes, what or TOP), key

    def download(self, webrtc_id, last_id):
        _, sess = self._session(webrtc_id, last_id)
        files = sess.snapshot_files() if sess is not None else []
        if not files:
            raise gr.Error("Nothing recorded yet: start the live stream first (timelines of ended streams are kept "
                           f"for {self.settings.live_keep_s / 60:.0f} minutes).")
        return gr.update(value=files, visible=True)

    def model_notice(self, model):
        state, warn = self.server.loader.wait(model, timeout=60)
        if state == "failed":
            return gr.update(value=f"⚠️ {warn}", visible=True)
        return gr.update(value="", visible=False)

    def build(self) -> WebRTC:
        """The tab's components and events (inside a ``gr.Blocks``); returns the WebRTC component."""
        s = self.settings
        rtc_client, rtc_server, rtc_about = rtc_configuration(s.rtc_env)
        log.info("WebRTC: %s", rtc_about)
        start = preset_slider_values(DEFAULT_PRESET)
        last_id, last_key, chart_key = gr.State(None), gr.State(""), gr.State("")
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
                with gr.Accordion("Settings (apply immediately, no restart)", open=False, elem_id="live-settings"):
                    with gr.Row():
                        model = model_menu(s, "live-model")
                        scene = gr.Radio(preset_choices(), value=DEFAULT_PRESET, label="Preset",
                                         elem_id="live-preset")
                    states = gr.Checkbox(preset(DEFAULT_PRESET).landmarks.face_states, elem_id="live-face-states",
                                         label="Face states: eyes, blinks, head pose, attention and drowsiness "
                                               "(about 1 ms per face)")
                    with gr.Row():
                        sliders = [gr.Slider(lo, hi, value=v, step=_SLIDERS[k][1], label=_SLIDERS[k][0],
                                             elem_id=f"live-{k.replace('_', '-')}")
                                   for (k, (lo, hi, _)), v in zip(SLIDER_RANGES.items(), start)]
            with gr.Column(scale=2, min_width=300):
                gr.Markdown("**People in view**", elem_classes="panel-title")
                table = gr.HTML(tracks_html(None, "Start the webcam: each person gets a row here."),
                                elem_id="live-tracks")
                gr.Markdown("**Timeline, last 30 s**", elem_classes="panel-title")
                what = gr.Dropdown(chart_choices(s.chart_classes()), value=TOP, show_label=False,
                                   elem_id="live-chart-what", container=False)
                plot = gr.HTML(live_chart_html(None, []), elem_id="live-plot")
                dl = gr.Button("Download the timeline recorded so far", elem_id="live-download")
                files = gr.File(label="Timeline files (CSV, JSON, summary)", file_count="multiple", interactive=False,
                                visible=False, elem_id="live-files")
        # every change of a control stamps `seq` (page clock, ms), so the server keeps the newest values
        seq = gr.Number(0, visible=False, elem_id="live-seq")
        # the registry's state for this connection ("running", "waiting", ...): what the page's toasts follow
        # (mounted but not shown, see the page's CSS: a component Gradio does not render sends no change event)
        state = gr.Textbox("", show_label=False, container=False, interactive=False, elem_id="live-state")
        for control in (model, scene, *sliders, states):
            control.change(None, None, [seq], js="() => Date.now()", show_api=False, queue=False)
        webrtc.stream(stable_handler(self.server.handler, skip_frames=True),
                      inputs=[webrtc, model, scene, *sliders, seq, states], outputs=[webrtc],
                      # live_max_streams are analysed (registry.max_active); live_busy_slots more connect only
                      # to be told "server busy"; fastrtc refuses any further connection.
                      concurrency_limit=s.live_max_streams + s.live_busy_slots, time_limit=s.live_time_limit_s)
        hook_cleanup(webrtc, self.registry, self.server.gate)
        scene.change(preset_slider_values, inputs=[scene], outputs=sliders, show_api=False, queue=False)
        gr.Timer(0.25).tick(self.tick, inputs=[webrtc, last_id, last_key],
                            outputs=[stats, notice, table, last_id, last_key, state],
                            show_progress="hidden", show_api=False, queue=False)
        chart_args = dict(fn=self.chart, inputs=[webrtc, last_id, what, chart_key], outputs=[plot, chart_key],
                          show_progress="hidden", show_api=False, queue=False)
        gr.Timer(1.0).tick(**chart_args)
        what.change(**chart_args)
        model.change(self.model_notice, inputs=[model], outputs=[notice], show_api=False)
        # a "server busy" toast stays until closed: close it once the server says this user no longer waits
        state.change(None, inputs=[state], outputs=None, js=CLOSE_BUSY_TOASTS_JS, show_api=False, queue=False)
        dl.click(self.download, inputs=[webrtc, last_id], outputs=[files], show_api=False)
        return webrtc
