"""One-off tools (model conversion and verification); not imported by the app."""
