"""The summary's files: its JSON and its CSV (one row per track), each written atomically."""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.results import prob_columns

from .files import AtomicFiles
from .summary import ACTIONS


def _atomic_write_text(path: Path, text: str) -> Path:
    path = Path(path)
    with AtomicFiles() as files, open(files.temp(path), "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def write_summary(summary: dict, path_json) -> Path:
    """Write the summary as JSON (atomically: temporary name, then rename)."""
    return _atomic_write_text(Path(path_json), json.dumps(summary, indent=1, ensure_ascii=False) + "\n")


def summary_csv_columns(classes) -> list[str]:
    return (["track_id", "first_seen_s", "last_seen_s", "visible_s", "frames", "dominant"]
            + prob_columns(classes, "mean_p") + prob_columns(classes, "share") + list(STATE_CSV) + list(ACTION_CSV))


#: Face-state columns of the summary CSV (empty when the track had no face states).
STATE_CSV = ("blinks", "blink_rate_per_min", "perclos_mean", "yawns", "drowsy_s", "attentive_share",
             "looking_away_share")
#: Action columns of the summary CSV (1.2): mean and peak of each of :data:`ACTIONS`, and the share of
#: measured rows looking at the camera.
ACTION_CSV = tuple(f"{s}_{a}" for a in ACTIONS for s in ("mean", "peak")) + ("looking_at_camera_share",)


def write_summary_csv(summary: dict, path_csv) -> Path:
    """One row per track: times, frames, dominant label, mean probabilities and label shares."""
    classes = summary["classes"]
    lines = [",".join(summary_csv_columns(classes))]
    for t in summary["tracks"]:
        vals = [t["track_id"], t["first_seen_s"], t["last_seen_s"], t["visible_s"], t["frames"], t["dominant"]]
        vals += [t["mean_probs"][c] for c in classes] + [t["label_share"][c] for c in classes]
        fs = t.get("face_states") or {}
        vals += [fs.get(k) for k in STATE_CSV]
        ac = t.get("actions") or {}
        vals += [(ac.get(a) or {}).get(s) for a in ACTIONS for s in ("mean", "peak")]
        vals.append(ac.get("looking_at_camera_share"))
        lines.append(",".join("" if v is None else str(v) for v in vals))
    return _atomic_write_text(Path(path_csv), "\n".join(lines) + "\n")
