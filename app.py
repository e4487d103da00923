"""Real-time multi-face emotion recognition: the Gradio app (also a Hugging Face Space).

Run ``python app.py`` and open http://127.0.0.1:7860 (GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT change the address).  This file only wires things up: one
:class:`webapp.server.Server`, built from the environment (read once, by
:class:`webapp.settings.Settings`), builds the page and serves it.  Importing it
builds the page but starts no thread and loads no model.  API use: docs/API.md.
"""
from __future__ import annotations

import logging
import os

from webapp.server import Server

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))

server = Server()
demo = server.build_demo()

if __name__ == "__main__":
    server.launch()
