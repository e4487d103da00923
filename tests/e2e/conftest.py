"""One app for the browser tests: as app.py wires it (Server, build_demo, launch), in this process,
with its folders under a temporary directory."""
from __future__ import annotations

import pytest

from testkit.browser import CHROMIUM, free_port


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from webapp.server import Server

    tmp = tmp_path_factory.mktemp("live")
    server = Server(live_dir=tmp / "live", output_dir=tmp / "out")
    server.build_demo()
    port = free_port()
    server.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield server, f"http://127.0.0.1:{port}/"
    finally:
        server.close()
