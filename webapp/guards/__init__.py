"""The HTTP server's guards: the ASGI middleware, fairness between clients, disk use and retention,
slow clients, and image checks."""
