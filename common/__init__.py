"""The bottom layer: what every other package may use and nothing here imports from them.

* :mod:`common.checks`: :class:`ConfigError` and the small rule functions each settings
  dataclass uses to validate itself in ``__post_init__``.
* :mod:`common.native`: silencing what native libraries print on model loads.
* :mod:`common.compat`: every change the project makes to a third-party library's internals,
  each with why, what it changes and the exact versions it was written for.
"""
