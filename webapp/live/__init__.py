"""The live path: fastrtc's frame handler, per-connection sessions, the registry of connections
(and the busy limit), the worker pool, and the WebRTC ICE/TURN set-up."""
