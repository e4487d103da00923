"""Metric code on hand-made cases with known answers, and synth GT vs the real detector."""
import numpy as np
import pytest

import pipeline  # noqa: F401  (import order: pipeline before tracker)
from benchmarks.metrics import classification_report, flicker_rate, iou_distance, label_lag, mot_metrics


# --------------------------------------------------------------------------- flicker / lag
def test_flicker_counts_changes_while_truth_is_steady():
    ts = [0, 1, 2, 3, 4, 5]
    truth = ["a", "a", "a", "b", "b", "b"]
    # segment a: a->b->a = 2 changes in 2 s; segment b: a->b is the expected catch-up
    assert flicker_rate(["a", "b", "a", "a", "b", "b"], truth, ts) == pytest.approx(2 / 4)
    assert flicker_rate(["a", "a", "a", "b", "b", "b"], truth, ts) == 0.0
    # a detour through a wrong label on the way counts once
    assert flicker_rate(["a", "a", "a", "a", "c", "b"], truth, ts) == pytest.approx(1 / 4)


def test_flicker_steady_stream():
    ts = np.arange(11) / 10.0  # 1 s
    labels = [0, 1] * 5 + [0]
    assert flicker_rate(labels, [0] * 11, ts) == pytest.approx(10.0)


def test_lag():
    ts = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    truth = [0, 0, 1, 1, 1, 1]
    assert label_lag([0, 0, 0, 1, 1, 1], truth, ts) == [0.5]
    assert label_lag([0, 0, 1, 1, 1, 1], truth, ts) == [0.0]
    assert label_lag([0, 0, 0, 0, 0, 0], truth, ts) == [None]
    # a one-frame blip to the right label does not count when the label must hold 0.6 s
    assert label_lag([0, 0, 1, 0, 1, 1], truth, ts, hold_s=0.6) == [1.0]


def test_lag_two_changes():
    ts = list(range(8))
    truth = [0, 0, 1, 1, 1, 2, 2, 2]
    labels = [0, 0, 0, 1, 1, 1, 1, 2]
    assert label_lag(labels, truth, ts) == [1.0, 2.0]


# --------------------------------------------------------------------------- accuracy
def test_classification_report():
    y_true = ["anger", "anger", "happiness", "happiness", "neutral"]
    y_pred = ["anger", "happiness", "happiness", "happiness", "contempt"]
    rep = classification_report(y_true, y_pred, ["neutral", "happiness", "anger"])
    assert rep["n"] == 5
    assert rep["accuracy"] == pytest.approx(3 / 5)
    # anger: P 1, R 0.5, F1 2/3; happiness: P 2/3, R 1, F1 0.8; neutral: 0
    assert rep["per_class"]["anger"]["f1"] == pytest.approx(2 / 3)
    assert rep["per_class"]["happiness"]["f1"] == pytest.approx(0.8)
    assert rep["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)
    assert rep["confusion"] == [[0, 0, 0], [0, 2, 0], [0, 1, 1]]
    assert rep["other_predictions"] == [1, 0, 0]  # 'contempt' is not a class here


def test_fer_csv_and_folders(tmp_path):
    from testkit.labelled import read_fer_csv, read_folders

    p = tmp_path / "fer.csv"
    px = " ".join(["128"] * (48 * 48))
    p.write_text(f"emotion,pixels,Usage\n3,{px},Training\n6,{px},PublicTest\n")
    items = read_fer_csv(p)
    assert [i.label for i in items] == ["happiness", "neutral"]
    assert items[0].image().shape == (48, 48, 3) and items[0].is_crop
    for name in ("Happy", "angry", "not_an_emotion"):
        (tmp_path / "f" / name).mkdir(parents=True)
        (tmp_path / "f" / name / "x.png").write_bytes(b"")
    assert sorted(i.label for i in read_folders(tmp_path / "f")) == ["anger", "happiness"]


# --------------------------------------------------------------------------- MOT
def test_iou_distance():
    d = iou_distance([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 10, 10], [50, 50, 5, 5]], 0.5)
    assert d[0, 0] == pytest.approx(0.0)
    assert np.isnan(d[0, 1])  # IoU 1/3 -> distance 2/3 > 0.5
    assert np.isnan(d[0, 2])


def test_mot_one_id_switch():
    box = (0, 0, 10, 10)
    gt = [[(1, *box), (2, 100, 0, 110, 10)] for _ in range(4)]
    # hypothesis: object 1 is 11 for two frames then 13 (one ID switch); object 2 always 12
    a, b, c = 11, 12, 13
    hyp = [[(a, *box), (b, 100, 0, 110, 10)], [(a, *box), (b, 100, 0, 110, 10)],
           [(c, *box), (b, 100, 0, 110, 10)], [(c, *box), (b, 100, 0, 110, 10)]]
    m = mot_metrics(gt, hyp)
    assert m["id_switches"] == 1
    assert m["num_gt"] == 8 and m["misses"] == 0 and m["false_positives"] == 0
    assert m["mota"] == pytest.approx(1 - 1 / 8)
    # IDF1: object 1 best matches 2 of its 4 frames -> IDTP = 2 + 4 = 6; IDF1 = 2*6 / (8 + 8)
    assert m["idf1"] == pytest.approx(12 / 16)


def test_mot_miss_and_false_positive():
    gt = [[(1, 0, 0, 10, 10)], [(1, 0, 0, 10, 10)]]
    hyp = [[(7, 0, 0, 10, 10)], [(7, 30, 30, 40, 40)]]  # second frame: far away -> miss + FP
    m = mot_metrics(gt, hyp)
    assert m["misses"] == 1 and m["false_positives"] == 1 and m["id_switches"] == 0
    assert m["mota"] == pytest.approx(0.0)


# --------------------------------------------------------------------------- synth
def test_synth_gt_matches_real_detector():
    from testkit.synth import make_sequence
    from testkit.synth_check import detection_recall
    from tracker.detect import FaceDetector

    det = FaceDetector("short", tiles=0)
    try:
        seq = make_sequence("two_cross", fps=5, seconds=2.0, seed=0)
        assert len(seq) == 10 and len(seq.frames) == 10
        fr = seq.frames[0]
        assert fr.shape == (480, 640, 3) and fr.dtype == np.uint8
        assert seq.timestamps[1] == pytest.approx(0.2)
        assert seq.ids == [1, 2]
        r = detection_recall(seq, det)
        assert r["recall"] >= 0.9 and r["mean_iou"] >= 0.75, r
    finally:
        det.close()


def test_synth_occlusion_hides_face():
    from testkit.synth import make_sequence

    seq = make_sequence("occlude", fps=10, seconds=4.0, hide_s=1.0)
    visible1 = [any(g[0] == 1 for g in fr) for fr in seq.gt]
    hidden = len(visible1) - sum(visible1)
    assert 7 <= hidden <= 14  # about 1 s at 10 fps behind the occluder (+ partial frames)
    assert visible1[0] and visible1[-1]
    assert all(any(g[0] == 2 for g in fr) for fr in seq.gt)  # the other face stays visible


def test_synth_is_deterministic_and_enter_leave():
    from testkit.synth import make_sequence

    a = make_sequence("enter_leave", fps=5, seconds=4.0, seed=3)
    b = make_sequence("enter_leave", fps=5, seconds=4.0, seed=3)
    assert a.gt == b.gt
    assert np.array_equal(a.frames[7], b.frames[7])
    counts = [len(g) for g in a.gt]
    assert counts[0] <= 1 and max(counts) >= 2  # faces come and go
    for fr in a.gt:
        for _, x1, y1, x2, y2 in fr:
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
