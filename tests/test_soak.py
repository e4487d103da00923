"""A short soak (1 minute of stream time, compressed): per-track structures stay
bounded by the faces in view while new IDs keep being handed out."""
import json

from benchmarks import soak


def test_structures_bounded_while_ids_grow(tmp_path):
    out = tmp_path / "soak.json"
    res = soak.main(["--minutes", "1", "--fps", "15", "--out", str(out)])
    assert json.loads(out.read_text())["frames"] == 900
    assert res["ids_given"] >= 6  # three cycles of people entering and leaving
    m = res["max_structures"]
    assert m["id_map"] <= 4 and m["deepsort_tracks"] <= 6 and m["smoother_tracks"] <= 4
    assert m["gallery_samples"] <= 4 * 30  # nn_budget per track
    # the live recorder's in-memory buffer holds only the last 30 s
    assert m["recent_rows"] <= 30 * 15 * 4
