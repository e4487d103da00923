"""Real-time multi-face emotion recognition: the Gradio app (also a Hugging Face Space).

Run ``python app.py`` and open http://127.0.0.1:7860 (GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT change the address).  This file only wires things up; the
page is built by :func:`webapp.ui.build_demo` and the logic lives in
:mod:`webapp`.  Importing it builds the page but starts no thread and loads
no model; the background work starts with the server.  API use: docs/API.md.
"""
from __future__ import annotations

import logging
import os

from webapp.services import Services
from webapp.ui import build_demo, launch

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))

services = Services()
demo = build_demo(services)

if __name__ == "__main__":
    services.start_background()  # live reaper, output janitor, disk guard
    launch(demo, services)
