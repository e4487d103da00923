"""The landmark stage: face mesh and blendshapes on each tracked face, then per-face measures and states.

The model is MediaPipe's Face Landmarker pair (:class:`tracker.facemesh.FaceMeshModel`: 478 landmarks
with the irises, then 52 blendshape scores) on the tracker's crops.

Runs after smoothing, once per measured face (at most once per
``landmarks.landmark_interval_s`` per face, and for at most
``landmarks.landmark_max_faces`` faces per frame - the ones that waited
longest - so a crowd costs what 4 faces cost and each face is measured every
few frames), and fills ``FrameResult.landmarks``,
``FrameResult.measures`` (:data:`pipeline.results.FACE_COLUMNS`) and
``FrameResult.state_events``.  Predicted rows (faces the detector missed) are
not measured: their measures are NaN and their states hold.  Switched off
(``face_states=False``) the columns are absent (NaN in exports) and every open
state ends at that frame, so a timeline stays consistent when the switch is
flipped mid-stream.
"""
from __future__ import annotations

import math

import numpy as np

from tracker.facegeom import eyes_in_frame, measures
from tracker.facemesh import (BLENDSHAPE_INDEX, DEFAULT_MESHES, FaceMeshCache, follow_roi, roi_from_landmarks,
                              roi_transforms)
from tracker.gaze import gaze
from tracker.landmarks import LandmarkConfig

from .facestate import FaceStates, blendshape_openness
from .results import FACE_COLUMNS, FrameResult

#: A face measured within this many seconds gets its crop from its last landmarks (moved with its box).
FOLLOW_S = 1.0


def _b(scores: np.ndarray, *names: str) -> np.ndarray:
    """(N,) mean of these blendshapes' scores."""
    return np.mean([scores[:, BLENDSHAPE_INDEX[n]] for n in names], axis=0).astype(np.float32)


def drop_cut_eyes(lms: np.ndarray, scores: np.ndarray, width: int, height: int) -> None:
    """No mesh and no blendshapes (NaN, in place) for a face whose eyes are not all in the frame: a face cut by
    the frame's edge gets a mesh from its padded crop, but its points beyond the edge are guesses."""
    out = ~eyes_in_frame(lms, width, height)
    if out.any():
        lms[out] = np.nan
        scores[out] = np.nan


def frown_score(brow_down: np.ndarray, smile: np.ndarray) -> np.ndarray:
    """The frown action: the brows' lowering (mean ``browDown``) where the mouth does not smile,
    ``browDown x (1 - smile)``.  A broad smile raises the cheeks and narrows the eyes, and the blendshape
    model reads that as lowered brows: up to 0.57 on the real smiling faces of the benchmark's photos,
    where the frowning (angry) faces of CK+ read 0.23-0.75 (``python -m benchmarks.face_states``,
    ``frown``)."""
    return (brow_down * (1.0 - smile)).astype(np.float32)


def face_measures(lms: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-frame measure of the faces: :func:`tracker.facegeom.measures`, gaze
    (:func:`tracker.gaze.gaze`), the actions ``smile``, ``brow_raise``, ``frown`` (:func:`frown_score`),
    and the eye and mouth blendshapes the states read (``blink_r``/``blink_l``: eyeBlinkRight/Left,
    ``squint``, ``jaw_open``)."""
    meas = measures(lms)
    meas.update(gaze(lms, meas["yaw"], meas["pitch"]))
    smile = _b(scores, "mouthSmileLeft", "mouthSmileRight")
    meas.update(smile=smile, brow_raise=_b(scores, "browInnerUp"),
                frown=frown_score(_b(scores, "browDownLeft", "browDownRight"), smile),
                blink_r=_b(scores, "eyeBlinkRight"), blink_l=_b(scores, "eyeBlinkLeft"),
                squint=_b(scores, "eyeSquintLeft", "eyeSquintRight"), jaw_open=_b(scores, "jawOpen"))
    return meas


class LandmarkStage:
    """The per-stream part: states per track and when each face was last measured.  The model comes
    from ``meshes`` (a :class:`tracker.facemesh.FaceMeshCache`; None: the process's default), loaded
    when a face is first measured."""

    name = "landmarks"

    def __init__(self, cfg: LandmarkConfig, threads: int = 2, meshes: FaceMeshCache | None = None):
        self.cfg = cfg
        self.threads = int(threads)
        self.meshes = meshes if meshes is not None else DEFAULT_MESHES
        self.states = FaceStates(cfg)
        self._last_run: dict[int, float] = {}
        self._rois: dict[int, tuple] = {}  # per track: (crop map from its last landmarks, its box then, time)
        self._was_on = False

    def set_config(self, cfg: LandmarkConfig) -> None:
        self.cfg = cfg
        self.states.cfg = cfg
        for st in self.states.faces.values():
            st.cfg = cfg

    def forget(self, track_ids, t: float) -> list[tuple]:
        for tid in track_ids:
            self._last_run.pop(int(tid), None)
            self._rois.pop(int(tid), None)
        return self.states.drop(track_ids, t)

    def reset(self) -> None:
        self.states.reset()
        self._last_run.clear()
        self._rois.clear()
        self._was_on = False

    def _mesh(self, rgb: np.ndarray, res: FrameResult, todo: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks and blendshapes of the faces in ``todo``, NaN for the others and those whose eyes are cut.

        The crop is MediaPipe's video rule: from the face's last landmarks (:func:`roi_from_landmarks`), moved
        with its tracked box since then (:func:`follow_roi`).  A face seen afresh gets a first look from the
        detector's box and keypoints, then a second from the landmarks that look found, so its scores do not
        depend on which detector drew the box (a crop a pixel off moves some scores by 0.05-0.1)."""
        boxes = res.boxes
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        run = todo & np.isfinite(side) & (side >= self.cfg.landmark_min_face)
        mats = roi_transforms(boxes, res.keypoints)
        fresh = run.copy()
        for i in np.flatnonzero(run):
            prior = self._rois.get(int(res.track_ids[i]))
            if prior is not None and t - prior[2] <= FOLLOW_S:
                mats[i] = follow_roi(prior[0], prior[1], boxes[i])
                fresh[i] = False
        model = self.meshes.get(self.threads)
        lms, _, scores = model.run_transforms(rgb, mats, run)
        again = fresh & np.isfinite(lms[:, 0, 0])
        if again.any():
            for i in np.flatnonzero(again):
                mats[i] = roi_from_landmarks(lms[i])
            lms2, _, scores2 = model.run_transforms(rgb, mats, again)
            ok = again & np.isfinite(lms2[:, 0, 0])
            lms[ok], scores[ok] = lms2[ok], scores2[ok]
        drop_cut_eyes(lms, scores, rgb.shape[1], rgb.shape[0])
        return lms, scores

    def __call__(self, res: FrameResult, rgb: np.ndarray) -> FrameResult:
        t = float(res.timestamp)
        # faces whose track ended or started afresh; a new tracker: every earlier face
        gone = tuple(self.states.faces) if res.tracks_reset else res.ended_tracks + res.restarted_tracks
        events = self.forget(gone, t)
        if not self.cfg.face_states:
            if self._was_on:
                events += self.states.end_all(t)
                self._last_run.clear()
                self._rois.clear()
            self._was_on = False
            res.state_events = tuple(events)
            return res
        self._was_on = True
        n = len(res)
        tids = res.track_ids
        todo = ~res.predicted
        if self.cfg.landmark_interval_s > 0:
            gap = self.cfg.landmark_interval_s - 1e-6
            todo &= np.array([t - self._last_run.get(int(i), -math.inf) >= gap for i in tids], bool)
        cap = self.cfg.landmark_max_faces
        if cap and todo.sum() > cap:  # the faces that waited longest (new ones first), the rest next frame
            waited = np.array([t - self._last_run.get(int(i), -1e9) for i in tids])
            side = np.maximum(res.boxes[:, 2] - res.boxes[:, 0], res.boxes[:, 3] - res.boxes[:, 1])
            cand = np.flatnonzero(todo & (side >= self.cfg.landmark_min_face))
            keep = cand[np.argsort(-waited[cand], kind="stable")[:cap]]
            todo = np.zeros(n, bool)
            todo[keep] = True
        lms, scores = self._mesh(rgb, res, todo, t)
        meas = face_measures(lms, scores)
        has = np.isfinite(meas["yaw"])
        for i in np.flatnonzero(has):
            self._last_run[int(tids[i])] = t
        for i in np.flatnonzero(todo):  # the next crop: from these landmarks; from the detector's box if none
            if np.isfinite(lms[i, 0, 0]):
                self._rois[int(tids[i])] = (roi_from_landmarks(lms[i]), res.boxes[i].copy(), t)
            else:
                self._rois.pop(int(tids[i]), None)
        cols, ev = self.states.update(t, tids, meas, has)
        res.landmarks = lms
        res.blendshapes = scores
        res.measures = {c: (cols[c] if c in cols else meas[c]).astype(np.float32) for c in FACE_COLUMNS}
        res.state_events = tuple(events + ev)
        return res


def still_face_columns(res: FrameResult, rgb: np.ndarray, cfg: LandmarkConfig, threads: int = 2,
                       meshes: FaceMeshCache | None = None) -> FrameResult:
    """Measures for a still image: eye openness from eyeBlink, mouth opening, head pose, gaze, actions.

    A photo has no time, so no blinks, PERCLOS, yawns or states (NaN).  ``meshes``: as for
    :class:`LandmarkStage`.
    """
    if not cfg.face_states:
        return res
    lms, _, scores = (meshes if meshes is not None else DEFAULT_MESHES).get(threads).run(rgb, res.boxes, res.keypoints, cfg.landmark_min_face)
    drop_cut_eyes(lms, scores, rgb.shape[1], rgb.shape[0])
    meas = face_measures(lms, scores)
    face = {c: np.full(len(res), np.nan, np.float32) for c in FACE_COLUMNS}
    for side in ("r", "l"):  # NaN in profile, as in videos
        face[f"eye_open_{side}"] = np.where(np.isfinite(meas[f"ear_{side}"]), blendshape_openness(meas[f"blink_{side}"]),
                                            np.nan).astype(np.float32)
    for c in ("mouth_open", "yaw", "pitch", "roll", "gaze_yaw", "gaze_pitch", "looking_at_camera",
              "smile", "brow_raise", "frown"):
        face[c] = meas[c].astype(np.float32)
    looking_away = (np.abs(meas["yaw"]) > cfg.away_yaw_deg) | (np.abs(meas["pitch"]) > cfg.away_pitch_deg)
    face["looking_away"] = np.where(np.isfinite(meas["yaw"]), looking_away, np.nan).astype(np.float32)
    res.landmarks = lms
    res.blendshapes = scores
    res.measures = face
    return res
