"""The Gradio app's logic, kept out of ``app.py`` (which only wires it up).

* :mod:`webapp.settings` - environment variables the app reads; menu choices (models, presets).
* :mod:`webapp.rtc` - ICE/TURN configuration for the WebRTC component.
* :mod:`webapp.models` - :class:`ModelLoader`: classifiers loaded off the stream loop.
* :mod:`webapp.session` - :class:`LiveSession`: one live connection's pipeline, recorder and stats.
* :mod:`webapp.registry` - :class:`SessionRegistry`: all live connections, busy limit, reaper.
* :mod:`webapp.stream` - fastrtc glue: the frame handler, the busy frame, fastrtc workarounds.
* :mod:`webapp.media` - image and video uploads (checks, presets, processing).
* :mod:`webapp.charts` - the tracks table (HTML), the stats line, one-line summaries, the page's CSS for them.
* :mod:`webapp.svgchart` - the timeline chart as inline SVG (track colours, legend, gaps).
* :mod:`webapp.services` - the objects the pages share and the server's background threads.
* :mod:`webapp.ui`, :mod:`webapp.ui_live`, :mod:`webapp.ui_media` - the page: :func:`webapp.ui.build_demo`.
"""
