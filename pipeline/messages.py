"""The sentences a user reads about bad input: one table for the app (:mod:`webapp`) and the command
line (:mod:`export`), so the same mistake reads the same everywhere.

    >>> message("empty", name="clip.mp4")
    'clip.mp4: the file is empty (0 bytes)'

Each entry is a :meth:`str.format` template; :func:`message` fills it.  Add a key here rather than
writing the sentence at the place that raises.
"""
from __future__ import annotations

MESSAGES: dict[str, str] = {
    # files
    "not_found": "{name}: file not found",
    "folder": "{name}: is a folder, not a video file",
    "empty": "{name}: the file is empty (0 bytes)",
    # videos
    "not_video": "{name}: not a readable video file ({why})",
    "text_not_video": "{name}: not a video: it is a text file",
    "image_not_video": "{name}: not a video: it is a still image ({kind}); analyse it as an image",
    "no_video_stream": "{name}: not a video: the file has no video stream",
    # choices
    "unknown_model": "unknown model {name!r}; choose one of: {choices}",
    "unknown_preset": "unknown preset {name!r}; presets are: {choices}",
}


def message(key: str, **fields) -> str:
    """The sentence ``key`` of :data:`MESSAGES` with ``fields`` filled in (a list is joined with ", ")."""
    fields = {k: (", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v) for k, v in fields.items()}
    return MESSAGES[key].format(**fields)
