"""Start ``python app.py`` as a user would, on a free 127.0.0.1 port (tests and benchmarks)."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Server settings for a test or benchmark whose many simulated clients all come from 127.0.0.1: the
#: per-address limits of :mod:`webapp.guards.fairness` (queued requests, videos in flight, upload budget) would
#: treat them as one flooding client.  Those limits are tested on their own (tests/test_fairness.py,
#: tests/test_videos_in_flight.py).
ONE_ADDRESS_MANY_CLIENTS = {"QUEUE_BURST_PER_CLIENT": "1000", "QUEUE_RATE_PER_CLIENT": "1000",
                            "VIDEOS_PER_CLIENT": "0", "UPLOAD_BURST_MB_PER_CLIENT": "100000"}


@contextlib.contextmanager
def start_app(tmp: Path, env_extra: dict | None = None, timeout_s: float = 120.0):
    """Run ``python app.py`` on a free 127.0.0.1 port with its folders (live timelines, outputs, Gradio's upload
    and output cache) in ``tmp``; yields (url, Popen)."""
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "LIVE_DIR": str(tmp / "live"), "OUTPUT_DIR": str(tmp / "out"), "GRADIO_TEMP_DIR": str(tmp / "gradio"),
           "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", **(env_extra or {})}
    with serve([sys.executable, "app.py"], REPO, env, port, tmp / "server.log", timeout_s) as out:
        yield out


@contextlib.contextmanager
def serve(cmd: list[str], cwd, env: dict, port: int, log_path: Path, timeout_s: float = 120.0,
          error: type[Exception] = RuntimeError):
    """Run ``cmd`` (a server on 127.0.0.1:``port``) with its output in ``log_path``; yields (url, Popen)
    once it answers, and stops it afterwards.  ``error`` is raised when it exits or stays silent."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        t_end = time.time() + timeout_s
        while True:
            if proc.poll() is not None:
                raise error(f"the app exited ({proc.returncode}):\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.time() > t_end:
                    raise error(f"the app did not answer within {timeout_s:.0f} s") from None
                time.sleep(0.5)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def call_api(client, api: str, data: list) -> tuple[str, str]:
    """A named endpoint through Gradio's plain HTTP API (``POST .../call/<api>``, then its event
    stream) with an ``httpx.Client``: (``"complete"`` or ``"error"``, the JSON text of its data).
    Files already on the server are passed as ``{"path": ..., "meta": {"_type": "gradio.FileData"}}``."""
    answer = client.post(f"gradio_api/call/{api}", json={"data": data})
    answer.raise_for_status()
    return call_result(client, api, answer.json()["event_id"])


def call_result(client, api: str, event_id: str) -> tuple[str, str]:
    """The outcome of a ``.../call/<api>`` event: (kind, data JSON text), ("none", "") if the stream ends."""
    with client.stream("GET", f"gradio_api/call/{api}/{event_id}") as r:
        kind = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                return kind, line[5:]
    return "none", ""
