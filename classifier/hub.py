"""Getting model files: shipped in the repo, or from the Hugging Face Hub.

``resolve(spec)`` returns a local path.  Hub models go through
``huggingface_hub.hf_hub_download(repo_id, filename, revision, token)``, so
the standard Hub settings apply: ``HF_HOME`` / ``HF_HUB_CACHE`` (where the
cache lives), ``HF_HUB_OFFLINE=1`` (cache only, no network), ``HF_TOKEN`` (or
the ``token`` argument) for private or gated repos.  A file already in the
cache is used without a network round trip when offline; with no network and
no cached copy the call fails fast with :class:`ModelUnavailable`, which names
the repo, file and revision.

``load_classifier(name)`` adds the fallback: if a Hub model can't be had (or is
broken), the embedded default is loaded and the reason is returned as a
warning for the UI to show.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from collections import OrderedDict
from pathlib import Path

from .onnx_model import EmotionClassifier, ModelError
from .spec import DEFAULT_MODEL, ModelSpec, get_spec

log = logging.getLogger(__name__)

#: Seconds to wait for the Hub before giving up (only when not offline).
HUB_TIMEOUT_S = float(os.environ.get("EMOTION_HUB_TIMEOUT", "10"))


class ModelUnavailable(ModelError):
    """A model file could not be obtained (no network, no cache, no such file)."""


def hub_reachable(timeout: float | None = None) -> bool:
    """Whether a TCP connection to the Hub endpoint (``HF_ENDPOINT``) opens quickly.

    huggingface_hub retries a failed request five times with back-off (about
    23 s with no network); probing first lets a machine without network go
    straight to the local cache.
    """
    from urllib.parse import urlparse

    from huggingface_hub import constants

    u = urlparse(constants.ENDPOINT)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        socket.create_connection((u.hostname, port), timeout=timeout or min(HUB_TIMEOUT_S, 3.0)).close()
        return True
    except OSError:
        return False


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_pin(spec: ModelSpec, path: Path) -> Path:
    """``path`` if it matches the spec's pin (size, sha256); a :class:`ModelUnavailable` if not."""
    path = Path(path)
    if spec.size and path.stat().st_size != spec.size:
        raise ModelUnavailable(f"refused the file of {spec.id} ({path.name}): {path.stat().st_size:,} bytes, "
                               f"the pinned file has {spec.size:,}")
    if spec.sha256:
        got = file_sha256(path)
        if got != spec.sha256:
            raise ModelUnavailable(f"refused the file of {spec.id} ({path.name}): sha256 {got[:12]}..., "
                                   f"the pinned file has {spec.sha256[:12]}...")
    return path


def resolve(spec: ModelSpec, token: str | None = None) -> Path:
    """Local path of the spec's ONNX file (downloading it from the Hub if needed), checked
    against the spec's pin (:func:`check_pin`)."""
    if spec.source in ("embedded", "file"):
        p = spec.embedded_path()
        if not p.is_file():
            raise ModelUnavailable(f"model file for {spec.id} is missing: {p.name}")
        return check_pin(spec, p)
    from huggingface_hub import hf_hub_download

    where = f"{spec.filename!r} from Hub repo {spec.repo_id!r} (revision {spec.revision!r})"
    offline = _offline()
    cache_only = offline or not hub_reachable()
    try:
        path = hf_hub_download(
            repo_id=spec.repo_id,
            filename=spec.filename,
            revision=spec.revision or None,
            token=token or os.environ.get("HF_TOKEN") or None,
            etag_timeout=HUB_TIMEOUT_S,
            local_files_only=cache_only,
        )
    except Exception as exc:  # network, offline mode without cache, 404, auth...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        from huggingface_hub import constants

        # cache-only: huggingface_hub's own text advises "set 'local_files_only' to False", which no
        # user of the app can act on; say what happened instead
        if offline:
            raise ModelUnavailable(f"could not get {where}: HF_HUB_OFFLINE is set and the file is not in "
                                   f"the local Hub cache") from exc
        if cache_only:
            raise ModelUnavailable(f"could not get {where}: the Hub at {constants.ENDPOINT} is not reachable "
                                   f"and the file is not in the local Hub cache") from exc
        raise ModelUnavailable(f"could not get {where}: {type(exc).__name__}: {reason[:300]}") from exc
    return check_pin(spec, Path(path))


#: Loaded classifiers, least recently used first; at most CACHE_SIZE stay loaded.
_CACHE: "OrderedDict[tuple, EmotionClassifier]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = int(os.environ.get("EMOTION_MODEL_CACHE", "4"))


def load_classifier(
    name: str | ModelSpec | None = None, *, token: str | None = None, fallback: bool = True, threads: int = 2
) -> tuple[EmotionClassifier, str | None]:
    """Load a classifier by spec id / spec path / ModelSpec.

    Returns ``(classifier, warning)``; ``warning`` is None unless the requested
    model failed and the embedded default was loaded instead.  Loaded models
    are cached and shared: an onnxruntime session is stateless and thread-safe,
    so streams share the weights but never any per-stream state.
    """
    spec = name if isinstance(name, ModelSpec) else get_spec(name)
    key = (spec.id, spec.source, spec.repo_id, spec.filename, spec.revision, spec.path, int(threads))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key], None
    try:
        clf = EmotionClassifier(spec, resolve(spec, token=token), threads=threads)
    except ModelError as exc:
        if not fallback or spec.id == DEFAULT_MODEL and spec.source == "embedded":
            raise
        log.warning("model %s unavailable, using %s: %s", spec.id, DEFAULT_MODEL, exc)
        default, _ = load_classifier(DEFAULT_MODEL, fallback=False, threads=threads)
        return default, f"{exc} — using the embedded default model {DEFAULT_MODEL!r} instead."
    with _CACHE_LOCK:
        _CACHE.setdefault(key, clf)
        _CACHE.move_to_end(key)
        while len(_CACHE) > max(CACHE_SIZE, 1):
            _CACHE.popitem(last=False)  # streams that use it keep their reference
        return _CACHE[key], None
