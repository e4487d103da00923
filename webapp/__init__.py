"""The Gradio app's logic, kept out of ``app.py`` (which only wires the UI).

* :mod:`webapp.settings` - environment variables the app reads.
* :mod:`webapp.rtc` - ICE/TURN configuration for the WebRTC component.
* :mod:`webapp.live` - the live-stream handler, one pipeline per connection.
* :mod:`webapp.media` - image and video uploads (UI and API endpoints).
* :mod:`webapp.charts` - tables and chart data for the pages.
"""
