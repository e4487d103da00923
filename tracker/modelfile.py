"""Model files from outside the project: each is checked against its pin (size, sha256) when loaded.

A wrong or missing file is refused with an error naming the file and saying where to get it
(``tracker/models/README.md`` records each file's source, licence and hash).  Hashing a detector's
model costs well under a millisecond per 100 KB, once per detector built.
"""
from __future__ import annotations

import hashlib
from pathlib import Path


class ModelFileError(RuntimeError):
    """A model file is missing or is not the file its pin names."""


def check_model(path: str | Path, sha256: str, size: int | None = None) -> Path:
    """``path`` if it is the pinned file, else a :class:`ModelFileError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing; tracker/models/README.md says where it comes from")
    data = path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256 or (size is not None and len(data) != size):
        raise ModelFileError(
            f"model file {path} is not the expected file: sha256 {got} ({len(data):,} bytes), expected "
            f"{sha256}" + (f" ({size:,} bytes)" if size else "") + "; get it again as tracker/models/README.md says")
    return path
