"""The Gradio app's logic, kept out of ``app.py`` (which only wires it up).

A folder per role, and one object that owns them all:

* :mod:`webapp.server` - :class:`~webapp.server.Server`, the application object built from one
  :class:`~webapp.settings.Settings` (:mod:`webapp.settings`, the environment read once).
* :mod:`webapp.live` - the live path: the frame handler fastrtc calls (``handler``), one connection's
  pipeline and recorder (``session``), all connections and the busy limit (``registry``), the worker
  threads (``pool``), ICE/TURN (``rtc``).
* :mod:`webapp.guards` - the HTTP server's guards: the ASGI middleware (``asgi``), fairness between
  clients (``fairness``), disk use (``disk``), the one retention sweeper (``retention``), slow clients
  (``slowclients``), truncated JPEGs (``imagecheck``).
* :mod:`webapp.ui` - the page: tabs (``live_tab``, ``media_tabs``), the whole page (``page``), tables and
  charts (``charts``, ``svgchart``).
* :mod:`webapp.media` - image and video analyses (checks, presets, processing); :mod:`webapp.models` -
  classifiers loaded off the stream loop.

Every change to a third-party library's internals is in :mod:`common.compat`.
"""
