"""One app for the browser tests: as app.py wires it (build_demo, start_background, launch), in this
process, with its folders under a temporary directory."""
from __future__ import annotations

import pytest

from testkit.browser import CHROMIUM, free_port


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from webapp.services import Services
    from webapp.ui import build_demo, launch

    tmp = tmp_path_factory.mktemp("live")
    services = Services(live_dir=tmp / "live", output_dir=tmp / "out")
    demo = build_demo(services)
    services.start_background()
    port = free_port()
    launch(demo, services, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield services, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
