"""The Pipeline end to end on real faces, bad input, isolation, live settings."""
import numpy as np
import pytest
from skimage import data

from classifier import DEFAULT_MODEL
from testkit.assets import feat_data, read_rgb
from testkit.synth import make_sequence
from pipeline import InvalidFrame, Pipeline, analyze_image, preset, to_rgb_uint8
from pipeline.annotate import draw, track_color

ASTRO = data.astronaut()


def test_astronaut_stream():
    with Pipeline() as p:
        results = [p.process(ASTRO, i / 30) for i in range(10)]
    # a stream's first frame shows its faces at once (a video's poster frame has boxes) ...
    for r in results:
        assert len(r) == 1 and r.track_ids.tolist() == [1]
        f = r[0]
        assert f.label == "happiness" and f.label_prob > 0.9
        assert set(f.smoothed) == set(r.classes) and abs(sum(f.smoothed.values()) - 1) < 1e-4
        assert set(r.timings_ms) >= {"detect", "track", "classify", "smooth", "total"}
    d = results[-1].to_dict()
    assert d["faces"][0]["track_id"] == 1 and d["faces"][0]["label"] == "happiness"
    assert len(d["faces"][0]["probs"]) == 7 and len(d["faces"][0]["raw_probs"]) == 7


def test_a_face_that_appears_later_needs_n_init_frames():
    """... but later a new face needs n_init=2 detections before it gets an ID (no one-frame false faces)."""
    blank = np.full_like(ASTRO, 127)
    with Pipeline() as p:
        results = [p.process(blank if i < 3 else ASTRO, i / 30) for i in range(6)]
    assert [len(r) for r in results] == [0, 0, 0, 0, 1, 1]


def test_with_detection_every_other_frame_a_new_face_is_at_most_one_frame_later():
    """``detect_every=2``: while a face is new (not confirmed yet) every frame is detected, so it gets its ID
    as fast as with every frame detected, once a detection has seen it (at most one carried frame later)."""
    blank = np.full_like(ASTRO, 127)
    for first in (3, 4):  # the face appears on a carried frame, then on a detected one
        counts = {}
        for every in (1, 2):
            with Pipeline(preset(None, detect_every=every)) as p:
                counts[every] = [len(p.process(blank if i < first else ASTRO, i / 30)) for i in range(first + 4)]
        assert counts[1] == [0] * (first + 1) + [1] * 3
        assert counts[2] == (counts[1] if first % 2 == 0 else [0] * (first + 2) + [1] * 2), counts


def test_analyze_image_group_photo():
    r = analyze_image(read_rgb(feat_data() / "multi_face.jpg"))
    assert len(r) == 5 and r.track_ids.tolist() == [1, 2, 3, 4, 5]
    assert [f.label for f in r].count("happiness") >= 4
    assert all(abs(sum(f.raw.values()) - 1) < 1e-4 for f in r)


def test_no_face_frames():
    with Pipeline() as p:
        for i in range(5):
            r = p.process(np.full((480, 640, 3), 127, np.uint8), i / 30)
            assert len(r) == 0 and r.raw.shape == (0, 7)
    assert len(analyze_image(read_rgb(feat_data() / "free-mountain-vector-01.jpg"))) == 0


@pytest.mark.parametrize("bad,msg", [
    (None, "None"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((10, 10, 5), np.uint8), "shape"),
    (np.array([["a", "b"]]), "pixel type"),
    (np.zeros((4, 4, 4, 4), np.uint8), "shape"),
    ("not an image", "pixel type"),
])
def test_bad_frames_raise_clear_errors_and_stream_continues(bad, msg):
    with Pipeline() as p:
        p.process(ASTRO, 0.0)
        with pytest.raises(InvalidFrame, match=msg):
            p.process(bad, 0.1)
        for i in range(2, 5):
            r = p.process(ASTRO, i / 30)
        assert len(r) == 1 and r.track_ids.tolist() == [1]


def test_frame_formats_are_converted():
    g = to_rgb_uint8(ASTRO[:, :, 0])
    assert g.shape == (512, 512, 3) and g.dtype == np.uint8
    assert to_rgb_uint8(np.dstack([ASTRO, np.full(ASTRO.shape[:2], 255, np.uint8)])).shape == (512, 512, 3)
    as16 = ASTRO.astype(np.uint16) * 257
    np.testing.assert_array_equal(to_rgb_uint8(as16), ASTRO)
    np.testing.assert_allclose(to_rgb_uint8(ASTRO / 255.0), ASTRO, atol=1)
    assert to_rgb_uint8(np.ones((1, 1), bool)).shape == (1, 1, 3)
    # grey, RGBA, 16-bit and float versions of the face are all analysed alike
    for frame in (ASTRO.mean(axis=2).astype(np.uint8), as16, ASTRO / 255.0):
        r = analyze_image(frame)
        assert len(r) == 1
    assert len(analyze_image(np.zeros((1, 1, 3), np.uint8))) == 0


def test_huge_frame_and_size_change_mid_stream():
    big = np.full((8000, 8000, 3), 60, np.uint8)
    big[3000:3512, 3000:3512] = ASTRO
    with Pipeline() as p:
        for i in range(4):
            r = p.process(ASTRO, i / 30)
        assert len(r) == 1
        r = p.process(big, 5 / 30)  # a different size mid-stream: no crash
        assert r.width == 8000
        r = p.process(ASTRO[::2, ::2], 6 / 30)
        assert r.width == 256
    with pytest.raises(InvalidFrame, match="too large"):
        to_rgb_uint8(np.zeros((20000, 20000), np.uint8))


def test_two_pipelines_are_isolated():
    """Interleaved frames from two streams: each numbers its own faces from 1
    and keeps its own smoothing."""
    seq = make_sequence("two_cross", fps=15, seconds=2.0, seed=1)
    with Pipeline() as a, Pipeline() as b:
        for i, (frame, t) in enumerate(zip(seq.frames, seq.timestamps)):
            ra = a.process(frame, t)
            rb = b.process(ASTRO, t)
        assert sorted(ra.track_ids.tolist()) == [1, 2]
        assert rb.track_ids.tolist() == [1]
        assert a.smoother.track_ids != b.smoother.track_ids or len(b.smoother) == 1
        assert len(b.smoother) == 1 and len(a.smoother) == 2


def test_live_config_changes_keep_the_stream():
    with Pipeline() as p:
        for i in range(4):
            p.process(ASTRO, i / 30)
        p.update_config(detector="full", half_life_s=1.0, min_score=0.6, min_face=30)
        r = p.process(ASTRO, 4 / 30)
        assert p.config.detection.detector == "full" and p.smoother.half_life_s == 1.0
        assert r.track_ids.tolist() == [1]  # same track, same ID
        p.update_config(model="ferplus-8")  # a Hub model that can't be downloaded here
        r = p.process(ASTRO, 5 / 30)
        assert len(r) == 1 and r.model_id == DEFAULT_MODEL
        assert p.warnings and "embedded default" in p.warnings[-1]
        with pytest.raises(ValueError, match="unknown"):
            p.update_config(colour="red")
        with pytest.raises(ValueError, match=r"smoothing.half_life_s must be a number from 0.0 to 60.0"):
            p.update_config(half_life_s=-1)
        p.update_config("steady")  # a whole preset
        p.process(ASTRO, 6 / 30)
        assert p.config == preset("steady") and p.smoother.half_life_s == 0.5 and p.tracker.config.hold_s == 1.0


def test_state_is_released_when_faces_leave():
    with Pipeline(max_hidden_s=0.5) as p:
        for i in range(10):
            p.process(ASTRO, i / 30)
        assert p.tracker.active_ids == [1] and len(p.smoother) == 1
        empty = np.full_like(ASTRO, 30)
        ended = []
        for i in range(10, 40):  # one second without faces
            ended += p.process(empty, i / 30).ended_tracks
        assert ended == [1]
        assert p.tracker.active_ids == [] and len(p.smoother) == 0
        assert len(p.tracker._ds.tracker.metric.samples) == 0


def test_many_faces_are_capped_with_a_warning():
    tile = np.kron(np.ones((4, 4, 1), np.uint8), ASTRO[50:200, 150:300])  # 16 faces in a grid
    r = analyze_image(tile)
    assert len(r) >= 12
    from pipeline import preset

    capped = analyze_image(tile, preset("standard", max_faces=5))
    assert len(capped) == 5 and "largest 5" in capped.warnings[0]


def test_annotation_draws_and_colours_are_stable():
    r = analyze_image(read_rgb(feat_data() / "multi_face.jpg"))
    img = read_rgb(feat_data() / "multi_face.jpg")
    out = draw(img, r)
    assert out.shape == img.shape and not np.array_equal(out, img)
    x1, y1, x2, y2 = [int(v) for v in r.boxes[0]]
    col = np.array(track_color(1))
    edge = out[y1 + 1, x1 + 5 : x2 - 5]
    assert (np.abs(edge.astype(int) - col).sum(axis=1) < 40).mean() > 0.8  # box edge in the track colour
    assert track_color(3) == track_color(3) and track_color(1) != track_color(2)


def test_thirty_plus_faces_in_one_frame(crowd_of_42):
    """42 real face crops in a 1500x1200 frame: image and stream modes both
    analyse 30+ of them, each with a full probability vector, in one batch."""
    canvas = crowd_of_42
    res = analyze_image(canvas)
    assert len(res) >= 30
    assert res.raw.shape == (len(res), 7) and np.allclose(res.raw.sum(axis=1), 1, atol=1e-4)
    with Pipeline("standard") as p:
        for i in range(4):
            r = p.process(canvas, i / 10)
    assert len(r) >= 30 and len(set(r.track_ids.tolist())) == len(r)


def _video_frames(name: str, n: int, step: int = 1) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(feat_data() / name)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % step == 0:
                out.append(f.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return out


def test_detect_every_second_frame_keeps_tracks_and_classifies_every_frame():
    """``detect_every=2`` (the Live tab's default): the detector runs on every other frame; the frames
    between keep the last boxes and IDs, and their faces are classified on their own pixels."""
    frames = _video_frames("WolfgangLanger_Pexels.mp4", 60, step=2)
    runs = {}
    for every in (1, 2):
        with Pipeline(preset(None, detect_every=every)) as p:
            calls = []
            detect = p.detector.detect
            p.detector.detect = lambda *a, **k: calls.append(1) or detect(*a, **k)
            runs[every] = ([p.process(f, i / 15) for i, f in enumerate(frames)], len(calls))
    every1, every2 = runs[1][0], runs[2][0]
    assert runs[1][1] == 60 and runs[2][1] == 30  # half the detector passes
    assert all(r.track_ids.tolist() == [1] for r in every1 + every2)  # one face, one ID all along
    for i in range(1, 60, 2):  # carried frames: the last detected box, this frame's own probabilities
        prev, cur = every2[i - 1], every2[i]
        assert np.array_equal(cur.boxes, prev.boxes) and cur.timings_ms["detect"] == 0.0
        assert not np.allclose(cur.raw, prev.raw)
        assert np.allclose(cur.boxes, every1[i].boxes, atol=0.08 * (every1[i].boxes[0, 2] - every1[i].boxes[0, 0]))
    same = sum(a.labels[0] == b.labels[0] for a, b in zip(every1, every2))
    assert same >= 54, same  # the labels agree on >= 90% of the frames (the face goes from sad to smiling)
    # a carried frame's probabilities are those of the same frame fully detected (same pixels, ~ the same box)
    gap = np.mean([np.abs(every2[i].raw - every1[i].raw).max() for i in range(1, 60, 2)])
    assert gap < 0.1, gap
