"""The Image and Video tabs and the ``/analyze_image`` and ``/analyze_video`` API endpoints.

Every entry point takes a preset name (the default: :data:`pipeline.config.DEFAULT_PRESET`);
its config is built by :meth:`webapp.media.Media.config_for` from ``pipeline.config.preset``.  The
tabs and endpoints of one :class:`~webapp.server.Server` use its analysis service, limits and fairness.
"""
from __future__ import annotations

import functools
import logging

import gradio as gr

from pipeline import DEFAULT_PRESET

from ..media import UserInputError
from ..settings import preset_choices
from .charts import chart_choices, image_summary, video_chart_html, video_summary
from .models_menu import model_menu
from .svgchart import TOP

log = logging.getLogger(__name__)


def _err(fn):
    """Turn user mistakes into a clear gr.Error (never a stack trace)."""

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


# -- image -----------------------------------------------------------------
def _preset_radio(elem_id: str) -> gr.Radio:
    return gr.Radio(preset_choices(), value=DEFAULT_PRESET, label="Preset", elem_id=elem_id, min_width=260)


class ImageTab:
    """The Image tab and ``/analyze_image`` of one server."""

    def __init__(self, server):
        self.server, self.settings, self.media = server, server.settings, server.media

    def ui_image(self, img, model, preset_name):
        if img is None:
            raise UserInputError("Upload an image first.")
        annotated, result = self.media.analyze_image_file(img, model, preset_name)  # size checked before decoding
        return annotated, image_summary(result), result

    def api(self, image, model, preset=DEFAULT_PRESET):
        """Analyse one image: every face with its box, probabilities and label (FrameResult.to_dict())."""
        # the parameter names are the API's keyword names (docs/API.md): image, model, preset
        _, result = self.media.analyze_image_file(image, model or None, preset or None, annotate=False)
        return result

    def build(self) -> None:
        s = self.settings
        with gr.Row():
            with gr.Column(min_width=300):
                img_in = gr.Image(type="filepath", label="Photo", sources=["upload", "webcam", "clipboard"],
                                  elem_id="image-in")
                with gr.Row():
                    model = model_menu(s, "image-model")
                    scene = _preset_radio("image-preset")
                btn = gr.Button("Analyse", variant="primary")
            with gr.Column(min_width=300):
                img_out = gr.Image(label="Annotated", format="png", elem_id="image-out")
                line = gr.Markdown("", elem_id="image-summary")
                with gr.Accordion("Details (JSON: boxes, every probability, face measures and blendshapes, as the API returns them)", open=False):
                    img_json = gr.JSON(label="Faces")
        for event in (btn.click, img_in.upload):
            self.server.fairness.limited(event(_err(self.ui_image), [img_in, model, scene], [img_out, line, img_json],
                                               show_api=False, concurrency_limit=s.image_concurrency,
                                               concurrency_id="image"))


# -- video -----------------------------------------------------------------
class VideoTab:
    """The Video tab and ``/analyze_video`` of one server (its output folder, limits and fairness)."""

    def __init__(self, server):
        self.server, self.settings, self.media = server, server.settings, server.media
        self.out_dir = server.output_dir

    def run(self, file, frame_step, model, preset_name, progress, blendshapes: bool = False):
        def cb(done, total):
            if total:
                progress(min(done / total, 1.0), desc=f"frame {done} of {total}")
            else:
                progress(None, desc=f"frame {done}")

        progress(0.0, desc="reading video")
        return self.media.process_video_file(file, self.out_dir, frame_step=frame_step, model=model or None,
                                             preset_name=preset_name or None, progress=cb,
                                             blendshapes=blendshapes)

    def ui(self, file, frame_step, model, preset_name, what, progress=gr.Progress()):
        vr = self.run(file, frame_step, model, preset_name, progress)
        note = (video_summary(vr.summary, vr.frames_processed, vr.frames_read, vr.duration_s, vr.fps)
                + "".join(f"\n\n⚠️ {w}" for w in vr.warnings))
        chart = {"data": vr.chart, "duration_s": vr.duration_s}
        return (note, str(vr.annotated_mp4), video_chart_html(vr.chart, vr.duration_s, what or TOP), chart,
                [str(p) for p in vr.files.paths()], vr.summary)

    @staticmethod
    def redraw(chart, what):
        """The chart of the last processed video, plotting ``what``."""
        if not chart:
            return gr.skip()
        return video_chart_html(chart["data"], chart["duration_s"], what or TOP)

    def api(self, video, frame_step, model, preset=DEFAULT_PRESET, blendshapes=False, progress=gr.Progress()):
        """Analyse a video: annotated MP4, timeline CSV/JSON, summary JSON/CSV files and the summary.
        ``blendshapes``: the timeline also gets every blendshape score (51 ``bs_*`` columns)."""
        # the parameter names are the API's keyword names (docs/API.md): video, frame_step, model, preset,
        # blendshapes; new ones go last, with defaults, so positional calls of older clients still work
        vr = self.run(video, frame_step, model, preset, progress, blendshapes=blendshapes)
        return (str(vr.annotated_mp4), str(vr.timeline_csv), str(vr.timeline_json), str(vr.summary_json),
                str(vr.summary_csv), vr.summary)

    def build(self) -> None:
        s = self.settings
        with gr.Row():
            with gr.Column(min_width=300):
                # a file box, not a player: the browser need not be able to play the upload (FFmpeg reads it)
                vid_in = gr.File(label="Video (MP4, MOV, WebM, AVI, MKV ...)", file_types=["video"],
                                 elem_id="video-in")
                step = gr.Slider(1, 10, value=1, step=1, label="Frame step (analyse every N-th frame)")
                with gr.Row():
                    model = model_menu(s, "video-model")
                    scene = _preset_radio("video-preset")
                btn = gr.Button("Process", variant="primary", elem_id="video-process")
            with gr.Column(min_width=300):
                note = gr.Markdown(elem_id="video-summary")
                vid_out = gr.Video(label="Annotated video", interactive=False, elem_id="video-out")
                what = gr.Dropdown(chart_choices(s.chart_classes()), value=TOP, show_label=False, container=False,
                                   elem_id="video-chart-what")
                plot = gr.HTML(video_chart_html(None, None), elem_id="video-plot")
                chart = gr.State(None)
                files = gr.File(label="Timeline CSV/JSON, summary, annotated MP4", file_count="multiple",
                                interactive=False)
                with gr.Accordion("Summary (JSON)", open=False):
                    summary = gr.JSON(label="Summary")
        self.server.fairness.video(btn.click(_err(self.ui), [vid_in, step, model, scene, what],
                                             [note, vid_out, plot, chart, files, summary], show_api=False,
                                             concurrency_limit=s.video_concurrency, concurrency_id="video"))
        what.change(self.redraw, [chart, what], [plot], show_api=False, queue=False, show_progress="hidden")


# -- API-only endpoints (plain files in, so any client can call them; see docs/API.md) --
#: The endpoints the API page and ``Client.view_api()`` list; every other event is hidden (still callable).
PUBLIC_APIS = ("analyze_image", "analyze_video")


def hide_internal_endpoints(demo: gr.Blocks) -> None:
    """Keep only :data:`PUBLIC_APIS` on the API page: fastrtc's WebRTC component registers its own
    events (``set_input_gradio``..., ``set_input_on_submit``) with ``show_api`` on and offers no switch.
    ``show_api=False`` (gradio 5.x; ``api_visibility="undocumented"`` in gradio 6) hides an event from
    the page and from ``view_api()`` but leaves it callable, which the live view's page needs."""
    for fn in demo.fns.values():
        if fn.api_name not in PUBLIC_APIS:
            fn.show_api = False


def build_api(server, image: ImageTab, video: VideoTab) -> None:
    s = server.settings
    with gr.Row(visible=False):
        img = gr.File(label="image")
        img_model = gr.Textbox(value=s.default_ui_model, label="model")
        img_preset = gr.Textbox(value=DEFAULT_PRESET, label="preset")
        img_out = gr.JSON(label="result")
        vid = gr.File(label="video")
        vid_step = gr.Number(value=1, precision=0, label="frame_step")
        vid_model = gr.Textbox(value=s.default_ui_model, label="model")
        vid_preset = gr.Textbox(value=DEFAULT_PRESET, label="preset")
        vid_bs = gr.Checkbox(value=False, label="blendshapes")
        outs = [gr.File(label=n) for n in ("annotated_mp4", "timeline_csv", "timeline_json", "summary_json",
                                           "summary_csv")] + [gr.JSON(label="summary")]
        img_btn, vid_btn = gr.Button(), gr.Button()
    server.fairness.limited(img_btn.click(_err(image.api), [img, img_model, img_preset], [img_out],
                                          api_name="analyze_image", concurrency_limit=s.image_concurrency,
                                          concurrency_id="image"))
    server.fairness.video(vid_btn.click(_err(video.api), [vid, vid_step, vid_model, vid_preset, vid_bs], outs,
                                        api_name="analyze_video", concurrency_limit=s.video_concurrency,
                                        concurrency_id="video"))
