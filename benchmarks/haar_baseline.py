"""The classic approach, standalone: OpenCV Haar cascade + the same ONNX emotion
model run one face at a time, no tracking.

Run by ``benchmarks/baseline.py`` with the Python of a separate venv that has
OpenCV 4 (``opencv-python-headless<5``: OpenCV 5 has no CascadeClassifier),
onnxruntime and numpy; imports nothing from this project.

    python haar_baseline.py FRAMES.npz CASCADE.xml MODEL.onnx OUT.json [--repeat N]
"""
import json
import os
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort


def main():
    frames_path, cascade_path, model_path, out_path = sys.argv[1:5]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
    data = np.load(frames_path)
    frames = data["frames"]  # (T, H, W, 3) RGB uint8
    cascade = cv2.CascadeClassifier(cascade_path)
    if cascade.empty():
        raise SystemExit(f"cannot load {cascade_path}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2  # as the app's classifier (classifier.onnx_model)
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    times, boxes_out, dets_ms, cls_ms = [], [], [], []
    for r in range(repeat):
        for fr in frames:
            t0 = time.perf_counter()
            gray = cv2.cvtColor(fr, cv2.COLOR_RGB2GRAY)
            faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
            t1 = time.perf_counter()
            H, W = gray.shape
            for (x, y, w, h) in faces:
                # the model's preprocessing (as fer does it): square box + 10 px, 64x64 grey, [-1, 1]
                side = max(w, h) + 20
                cx, cy = x + w / 2, y + h / 2
                X1, Y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
                X2, Y2 = X1 + side, Y1 + side
                crop = gray[max(Y1, 0):min(Y2, H), max(X1, 0):min(X2, W)]
                pads = (max(0, -Y1), max(0, Y2 - H), max(0, -X1), max(0, X2 - W))
                if any(pads):
                    crop = cv2.copyMakeBorder(crop, *pads, borderType=cv2.BORDER_REPLICATE)
                x64 = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1.0
                sess.run(None, {inp: x64[None, None]})  # one face at a time
            t2 = time.perf_counter()
            times.append((t2 - t0) * 1000)
            dets_ms.append((t1 - t0) * 1000)
            cls_ms.append((t2 - t1) * 1000)
            if r == 0:
                boxes_out.append([[float(x), float(y), float(x + w), float(y + h)] for (x, y, w, h) in faces])
    with open(out_path, "w") as f:
        json.dump({"times_ms": times, "detect_ms": dets_ms, "classify_ms": cls_ms, "boxes": boxes_out,
                   "opencv": cv2.__version__, "onnxruntime": ort.__version__}, f)


if __name__ == "__main__":
    main()
