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

#: Seconds to wait for the Hub before giving up (only when not offline); a :class:`ClassifierCache`
#: may set its own (the server's ``EMOTION_HUB_TIMEOUT``).
HUB_TIMEOUT_S = 10.0


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


def resolve(spec: ModelSpec, token: str | None = None, timeout_s: float = HUB_TIMEOUT_S) -> Path:
    """Local path of the spec's ONNX file (downloading it from the Hub if needed), checked
    against the spec's pin (:func:`check_pin`).  ``token`` None: huggingface_hub's own (``HF_TOKEN``)."""
    if spec.source in ("embedded", "file"):
        p = spec.embedded_path()
        if not p.is_file():
            raise ModelUnavailable(f"model file for {spec.id} is missing: {p.name}")
        return check_pin(spec, p)
    from huggingface_hub import hf_hub_download

    where = f"{spec.filename!r} from Hub repo {spec.repo_id!r} (revision {spec.revision!r})"
    offline = _offline()
    cache_only = offline or not hub_reachable(min(timeout_s, 3.0))
    try:
        path = hf_hub_download(
            repo_id=spec.repo_id,
            filename=spec.filename,
            revision=spec.revision or None,
            token=token or None,
            etag_timeout=timeout_s,
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


class ClassifierCache:
    """Loaded classifiers, least recently used first; at most ``size`` stay loaded.

    An onnxruntime session is stateless and thread-safe, so pipelines and streams share the weights
    but never any per-stream state.  A server owns one (``EMOTION_MODEL_CACHE``,
    ``EMOTION_HUB_TIMEOUT``); :func:`load_classifier` uses the process's default one.
    """

    def __init__(self, size: int = 4, hub_timeout_s: float = HUB_TIMEOUT_S):
        if int(size) < 1:
            raise ValueError(f"a classifier cache holds at least 1 model, not {size}")
        self.size, self.hub_timeout_s = int(size), float(hub_timeout_s)
        self._models: "OrderedDict[tuple, EmotionClassifier]" = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._models)

    def ids(self) -> list[str]:
        """The loaded models' ids, least recently used first."""
        with self._lock:
            return [clf.spec.id for clf in self._models.values()]

    def load(self, name: str | ModelSpec | None = None, *, token: str | None = None, fallback: bool = True,
             threads: int = 2) -> tuple[EmotionClassifier, str | None]:
        """Load a classifier by spec id / spec path / ModelSpec: ``(classifier, warning)``.

        ``warning`` is None unless the requested model failed and the embedded default was loaded
        instead (with ``fallback``; without it the :class:`ModelError` is raised).
        """
        spec = name if isinstance(name, ModelSpec) else get_spec(name)
        key = (spec.id, spec.source, spec.repo_id, spec.filename, spec.revision, spec.path, int(threads))
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key], None
        try:
            clf = EmotionClassifier(spec, resolve(spec, token=token, timeout_s=self.hub_timeout_s), threads=threads)
        except ModelError as exc:
            if not fallback or spec.id == DEFAULT_MODEL and spec.source == "embedded":
                raise
            log.warning("model %s unavailable, using %s: %s", spec.id, DEFAULT_MODEL, exc)
            default, _ = self.load(DEFAULT_MODEL, fallback=False, threads=threads)
            return default, f"{exc} — using the embedded default model {DEFAULT_MODEL!r} instead."
        with self._lock:
            self._models.setdefault(key, clf)
            self._models.move_to_end(key)
            while len(self._models) > self.size:
                self._models.popitem(last=False)  # streams that use it keep their reference
            return self._models[key], None


#: The process's default cache: library calls (:class:`pipeline.Pipeline`, ``analyze_image``, the CLI)
#: that are not given one share it.
DEFAULT_CACHE = ClassifierCache()


def load_classifier(
    name: str | ModelSpec | None = None, *, token: str | None = None, fallback: bool = True, threads: int = 2
) -> tuple[EmotionClassifier, str | None]:
    """:meth:`ClassifierCache.load` on the process's default cache (:data:`DEFAULT_CACHE`)."""
    return DEFAULT_CACHE.load(name, token=token, fallback=fallback, threads=threads)
