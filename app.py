"""Real-time multi-face emotion recognition: the Gradio app (also a Hugging Face Space).

Run ``python app.py`` and open http://127.0.0.1:7860 (GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT change the address).  This file only wires the UI; the
logic lives in :mod:`webapp`.  API use: docs/API.md.
"""
from __future__ import annotations

import logging
import os
import warnings

import gradio as gr
import pandas as pd
from fastrtc import WebRTC

from webapp import settings as S
from webapp.charts import timeline_plot_frame, tracks_frame
from webapp.live import LiveHandler, LiveSettings, ModelLoader, SessionRegistry, hook_cleanup, stable_handler
from webapp.media import UserInputError, analyze_image_file, cleanup_outputs, process_video_file
from webapp.rtc import rtc_configuration

# gradio 5.50 announces gradio 6 renames (css=, show_api=); fastrtc 0.0.34 needs gradio<6.
warnings.filterwarnings("ignore", message=r".*(The 'css' parameter|The 'show_api' parameter).*")
logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
log = logging.getLogger("app")

MODELS = S.model_choices()
LIVE_DEFAULTS = LiveSettings()  # the pipeline's defaults (PipelineConfig)
LOADER = ModelLoader()
REGISTRY = SessionRegistry(LOADER, S.LIVE_DIR, idle_s=S.LIVE_IDLE_S, keep_s=S.LIVE_KEEP_S, max_active=S.LIVE_MAX_STREAMS)
REGISTRY.start_reaper()
HANDLER = LiveHandler(REGISTRY)
RTC_CLIENT, RTC_SERVER, RTC_DESCRIPTION = rtc_configuration()
S.OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
log.info("WebRTC: %s", RTC_DESCRIPTION)


def _output_janitor(every_s: float = 300.0) -> None:
    """Delete processed-upload folders older than OUTPUT_KEEP_S, even when no video is processed."""
    import threading
    import time

    def loop():
        while True:
            try:
                cleanup_outputs(S.OUTPUT_DIR, S.OUTPUT_KEEP_S)
            except Exception:  # pragma: no cover - never let the janitor die
                log.exception("output cleanup")
            time.sleep(every_s)

    threading.Thread(target=loop, daemon=True, name="output-janitor").start()


_output_janitor(min(300.0, S.OUTPUT_KEEP_S / 2))

INTRO = """# Multi-face emotion recognition
Every face gets a box in its own colour, a stable ID, its smoothed top emotion and a bar chart of all
emotions. **Live**: your webcam, analysed on the server in real time. **Image** / **Video**: upload a file.
API (gradio_client): `/analyze_image`, `/analyze_video` - see docs/API.md."""


def _err(fn):
    """Turn user mistakes into a clear gr.Error (never a stack trace)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except UserInputError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:
            log.exception("%s failed", fn.__name__)
            raise gr.Error(f"Processing failed: {type(exc).__name__}: {exc}") from None

    return wrapper


# -- live ------------------------------------------------------------------
def _stats_md(info: dict) -> str:
    state = "live" if info["active"] else "ended"
    return (f"**{info['fps']:.1f} fps** processed · **{info['latency_ms']:.0f} ms** per frame on the server · "
            f"{info['faces']} face(s) · {info['frames']} frames · model `{info['model']}` · "
            f"detector `{info['detector']}` · stream {state}")


def live_tick(webrtc_id, last_id, last_version):
    sid = webrtc_id if isinstance(webrtc_id, str) and webrtc_id else last_id
    sess = REGISTRY.get(sid) if sid else None
    if sess is None and REGISTRY.is_waiting(sid):  # turned away: LIVE_MAX_STREAMS streams run
        return (gr.skip(), gr.update(value=f"⚠️ {REGISTRY.busy_message()}", visible=True)) + (gr.skip(),) * 4
    if sess is None or (sid == last_id and sess.version == last_version and sess.closed):
        return (gr.skip(),) * 6
    if sid == last_id and sess.version == last_version:
        return (gr.skip(),) * 6
    info = sess.info()
    notice = f"⚠️ {info['notice']}" if info.get("notice") else ""
    header, rows = sess.tracks_rows()
    df, classes = sess.recent(30.0)
    plot = timeline_plot_frame(df, classes)
    # (an empty frame given to a LinePlot breaks its later updates in gradio 5.50: skip instead)
    return (_stats_md(info), gr.update(value=notice, visible=bool(notice)), tracks_frame(header, rows),
            plot if len(plot) else gr.skip(), sid, sess.version)


def live_download(webrtc_id, last_id):
    sid = webrtc_id if isinstance(webrtc_id, str) and webrtc_id else last_id
    sess = REGISTRY.get(sid) if sid else None
    if sess is None:
        raise gr.Error("Nothing recorded yet: start the live stream first (timelines of ended streams are kept "
                       f"for {S.LIVE_KEEP_S / 60:.0f} minutes).")
    files = sess.snapshot_files()
    if not files:
        raise gr.Error("The timeline recorder is not available in this installation.")
    return files


def model_notice(model):
    state, warn = LOADER.wait(model, timeout=60)
    if state == "failed":
        return gr.update(value=f"⚠️ {warn}", visible=True)
    return gr.update(value="", visible=False)


# -- image -----------------------------------------------------------------
@_err
def ui_image(img, model):
    if img is None:
        raise UserInputError("Upload an image first.")
    annotated, result = analyze_image_file(img, model)  # a file path: size checked before decoding
    return annotated, result


@_err
def api_image(file, model):
    """Analyse one image: every face with its box, probabilities and label (FrameResult.to_dict())."""
    _, result = analyze_image_file(file, model or None, annotate=False)
    return result


# -- video -----------------------------------------------------------------
def _run_video(file, frame_step, model, detector, progress):
    cleanup_outputs(S.OUTPUT_DIR, S.OUTPUT_KEEP_S)

    def cb(done, total):
        if total:
            progress(min(done / total, 1.0), desc=f"frame {done} of {total}")
        else:
            progress(None, desc=f"frame {done}")

    progress(0.0, desc="reading video")
    return process_video_file(file, S.OUTPUT_DIR, frame_step=frame_step, model=model or None, detector=detector,
                              max_seconds=S.VIDEO_MAX_SECONDS, max_pixels=S.VIDEO_MAX_PIXELS, progress=cb)


def _video_plot(vr):
    try:
        df = pd.read_csv(vr.timeline_csv)
        classes = [c[2:] for c in df.columns if c.startswith("p_")]
        plot = timeline_plot_frame(df, classes, bin_s=max(0.25, (vr.duration_s or 0) / 200))
        return plot if len(plot) else None
    except Exception as exc:
        log.warning("video timeline chart failed: %s", exc)
        return None


@_err
def ui_video(file, frame_step, model, detector, progress=gr.Progress()):
    vr = _run_video(file, frame_step, model, detector, progress)
    files = [str(p) for p in (vr.timeline_csv, vr.timeline_json, vr.summary_json, vr.summary_csv, vr.annotated_mp4) if p]
    note = (f"{vr.frames_processed} of {vr.frames_read} frames analysed ({vr.duration_s:.1f} s at {vr.fps:.1f} fps)."
            + ("".join(f"\n\n⚠️ {w}" for w in vr.warnings) if vr.warnings else ""))
    return str(vr.annotated_mp4), files, vr.summary, _video_plot(vr), note


@_err
def api_video(file, frame_step, model, progress=gr.Progress()):
    """Analyse a video: annotated MP4, timeline CSV/JSON, summary JSON/CSV files and the summary."""
    vr = _run_video(file, frame_step, model, None, progress)
    return (str(vr.annotated_mp4), str(vr.timeline_csv), str(vr.timeline_json), str(vr.summary_json),
            str(vr.summary_csv), vr.summary)


# -- layout ----------------------------------------------------------------
CSS = """
#live-video video { max-height: 520px; }
.notice { color: #b45309; }
"""

# Gradio's file cache (uploads, returned files) is swept every 10 min of files older than OUTPUT_KEEP_S.
with gr.Blocks(title="Multi-face emotion recognition", css=CSS,
               delete_cache=(int(min(600, S.OUTPUT_KEEP_S)), int(S.OUTPUT_KEEP_S))) as demo:
    gr.Markdown(INTRO)
    last_id = gr.State(None)
    last_version = gr.State(-1)

    with gr.Tab("Live", id="live"):
        with gr.Row():
            with gr.Column(scale=3):
                webrtc = WebRTC(label="Webcam (analysed on the server)", show_label=False, mode="send-receive", modality="video",
                                rtc_configuration=RTC_CLIENT, server_rtc_configuration=RTC_SERVER,
                                mirror_webcam=False, elem_id="live-video", full_screen=False, height=480,
                                button_labels={"start": "Start webcam", "stop": "Stop", "waiting": "Connecting"},
                                track_constraints={"width": {"ideal": 640}, "height": {"ideal": 480},
                                                   "frameRate": {"ideal": 30}, "facingMode": "user"})
                live_stats = gr.Markdown("Press the button on the video to start your webcam.", elem_id="live-stats")
                live_notice = gr.Markdown("", visible=False, elem_classes="notice", elem_id="live-notice")
                with gr.Accordion("Settings (apply immediately, no restart)", open=True):
                    with gr.Row():
                        l_model = gr.Dropdown(MODELS, value=S.DEFAULT_UI_MODEL, label="Model")
                        l_detector = gr.Radio([("near (webcam)", "short"), ("far / groups", "full")], value=LIVE_DEFAULTS.detector,
                                              label="Detector range")
                    with gr.Row():
                        l_half = gr.Slider(0, 3, value=LIVE_DEFAULTS.half_life_s, step=0.05, label="Smoothing half-life (s)")
                        l_minface = gr.Slider(8, 200, value=LIVE_DEFAULTS.min_face, step=2, label="Minimum face size (px)")
                        l_score = gr.Slider(0.1, 0.95, value=LIVE_DEFAULTS.min_score, step=0.05, label="Detection threshold")
            with gr.Column(scale=2):
                live_table = gr.DataFrame(tracks_frame(["track", "emotion", "prob"], []), label="Current tracks (smoothed probabilities)", elem_id="live-tracks",
                                          interactive=False, wrap=True)
                live_plot = gr.LinePlot(None, x="time_s", y="prob", color="series",
                                        label="Timeline, last 30 s", x_title="time (s)", y_title="probability",
                                        y_lim=[0, 1], height=340, elem_id="live-plot")
                live_dl = gr.Button("Download the timeline recorded so far", elem_id="live-download")
                live_files = gr.File(label="Timeline files (CSV, JSON, summary)", file_count="multiple",
                                     interactive=False)
        webrtc.stream(stable_handler(HANDLER, skip_frames=True),
                      inputs=[webrtc, l_model, l_detector, l_half, l_minface, l_score], outputs=[webrtc],
                      # LIVE_MAX_STREAMS are analysed (REGISTRY.max_active); LIVE_BUSY_SLOTS more connect only
                      # to be told "server busy"; fastrtc refuses any further connection.
                      concurrency_limit=S.LIVE_MAX_STREAMS + S.LIVE_BUSY_SLOTS, time_limit=S.LIVE_TIME_LIMIT_S)
        hook_cleanup(webrtc, REGISTRY)
        timer = gr.Timer(0.5)
        timer.tick(live_tick, inputs=[webrtc, last_id, last_version],
                   outputs=[live_stats, live_notice, live_table, live_plot, last_id, last_version],
                   show_progress="hidden", show_api=False, queue=False)
        l_model.change(model_notice, inputs=[l_model], outputs=[live_notice], show_api=False)
        live_dl.click(live_download, inputs=[webrtc, last_id], outputs=[live_files], show_api=False)

    with gr.Tab("Image", id="image"):
        with gr.Row():
            with gr.Column():
                img_in = gr.Image(type="filepath", label="Photo", sources=["upload", "webcam", "clipboard"])
                img_model = gr.Dropdown(MODELS, value=S.DEFAULT_UI_MODEL, label="Model")
                img_btn = gr.Button("Analyse", variant="primary")
            with gr.Column():
                img_out = gr.Image(label="Annotated", format="png")
                img_json = gr.JSON(label="Faces (box, probabilities, label)")
        img_btn.click(ui_image, [img_in, img_model], [img_out, img_json], show_api=False, concurrency_limit=2)
        img_in.upload(ui_image, [img_in, img_model], [img_out, img_json], show_api=False, concurrency_limit=2)

    with gr.Tab("Video", id="video"):
        with gr.Row():
            with gr.Column():
                vid_in = gr.Video(label="Video", sources=["upload"])
                vid_step = gr.Slider(1, 10, value=1, step=1, label="Frame step (analyse every N-th frame)")
                with gr.Row():
                    vid_model = gr.Dropdown(MODELS, value=S.DEFAULT_UI_MODEL, label="Model")
                    vid_det = gr.Radio([("near", "short"), ("far / groups", "full")], value="full",
                                       label="Detector range")
                vid_btn = gr.Button("Process", variant="primary")
            with gr.Column():
                vid_out = gr.Video(label="Annotated video", interactive=False)
                vid_note = gr.Markdown()
                vid_plot = gr.LinePlot(None, x="time_s", y="prob", color="series", label="Timeline",
                                       x_title="time (s)", y_title="probability", y_lim=[0, 1], height=260)
                vid_files = gr.File(label="Timeline CSV/JSON, summary, annotated MP4", file_count="multiple",
                                    interactive=False)
                vid_summary = gr.JSON(label="Summary")
        vid_btn.click(ui_video, [vid_in, vid_step, vid_model, vid_det],
                      [vid_out, vid_files, vid_summary, vid_plot, vid_note], show_api=False,
                      concurrency_limit=1, concurrency_id="video")

    # API-only endpoints (plain files in, so any client can call them; see docs/API.md)
    with gr.Row(visible=False):
        a_img = gr.File(label="image")
        a_img_model = gr.Textbox(value=S.DEFAULT_UI_MODEL, label="model")
        a_img_out = gr.JSON(label="result")
        a_vid = gr.File(label="video")
        a_vid_step = gr.Number(value=1, precision=0, label="frame_step")
        a_vid_model = gr.Textbox(value=S.DEFAULT_UI_MODEL, label="model")
        a_vid_mp4 = gr.File(label="annotated_mp4")
        a_vid_csv = gr.File(label="timeline_csv")
        a_vid_json = gr.File(label="timeline_json")
        a_vid_sjson = gr.File(label="summary_json")
        a_vid_scsv = gr.File(label="summary_csv")
        a_vid_summary = gr.JSON(label="summary")
        a_img_btn = gr.Button()
        a_vid_btn = gr.Button()
    a_img_btn.click(api_image, [a_img, a_img_model], [a_img_out], api_name="analyze_image", concurrency_limit=2)
    a_vid_btn.click(api_video, [a_vid, a_vid_step, a_vid_model],
                    [a_vid_mp4, a_vid_csv, a_vid_json, a_vid_sjson, a_vid_scsv, a_vid_summary],
                    api_name="analyze_video", concurrency_limit=1, concurrency_id="video")


if __name__ == "__main__":
    demo.queue(default_concurrency_limit=2, max_size=S.QUEUE_MAX_SIZE).launch(
        max_file_size=f"{S.MAX_UPLOAD_MB}mb",
        allowed_paths=[str(S.LIVE_DIR), str(S.OUTPUT_DIR)],
    )
