"""How FER2013 frames a face, in the app's face-detector boxes: the crop margin a FER2013-trained model wants.

    python -m benchmarks.fer_framing [--n 600]      # writes benchmarks/results/fer_framing.json

FER2013's 48x48 images are whole faces, cropped by its authors' own face registration. The app crops
faces from the detector's boxes (``LargestFace``: BlazeFace short, then full range). Each sampled
PublicTest image is upscaled to 192 px, set on a plain background (its mean grey, so the detector sees a
whole face with room around it) and the detector's box is compared with the image: the image side over
the squared box side gives the margin that reproduces FER2013's framing from a detector box
(``crop_margin = (ratio - 1) / 2`` per side), and the offset of the box centre from the image centre
shows where FER2013 puts the face.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    import cv2

    import pipeline  # noqa: F401  (import order: pipeline before tracker)
    from testkit.fer2013 import load_split, metadata
    from testkit.labelled import LargestFace

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=600, help="PublicTest images sampled (seed 0)")
    ap.add_argument("--out", default=str(RESULTS / "fer_framing.json"))
    a = ap.parse_args(argv)
    t0 = time.time()
    x, _ = load_split("PublicTest")
    det = LargestFace()
    ratios, offs = [], []
    pick = np.random.default_rng(0).choice(len(x), min(a.n, len(x)), replace=False)
    for i in pick:
        g = cv2.resize(x[i], (192, 192), interpolation=cv2.INTER_LINEAR)
        pad = cv2.copyMakeBorder(g, 96, 96, 96, 96, cv2.BORDER_CONSTANT, value=int(g.mean()))
        b = det(np.repeat(pad[..., None], 3, 2))
        if b is None:
            continue
        x1, y1, x2, y2 = (float(v) for v in b)
        side = max(x2 - x1, y2 - y1)
        ratios.append(192 / side)
        offs.append((((x1 + x2) / 2 - 192) / side, ((y1 + y2) / 2 - 192) / side))
    det.close()
    r, o = np.array(ratios), np.array(offs)
    res = {
        "command": "python -m benchmarks.fer_framing" + (f" --n {a.n}" if a.n != 600 else ""),
        "data": {"split": "PublicTest", "source": metadata()["source"]},
        "sampled": int(len(pick)), "found": int(len(r)),
        "image_over_box_side": {"median": float(np.median(r)), "p25": float(np.percentile(r, 25)),
                                "p75": float(np.percentile(r, 75))},
        "crop_margin_median": float((np.median(r) - 1) / 2),
        "box_centre_offset_in_box_sides": {"x_median": float(np.median(o[:, 0])), "y_median": float(np.median(o[:, 1]))},
        "seconds": time.time() - t0,
    }
    print(f"{res['found']} of {res['sampled']} faces found; image side / box side median {np.median(r):.3f} "
          f"(IQR {np.percentile(r, 25):.3f}-{np.percentile(r, 75):.3f}) -> crop_margin {res['crop_margin_median']:.3f} "
          f"per side; box centre {np.median(o[:, 1]):+.3f} box sides below the image centre")
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
