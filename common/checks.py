"""Settings that validate themselves: :class:`ConfigError` and rule functions.

Each settings dataclass (``DetectionConfig``, ``TrackerConfig``, ``ClassifierConfig``,
``SmoothingConfig``, ``LandmarkConfig``) keeps a ``RULES`` mapping from field name to a rule
next to its fields and calls :func:`validate` from ``__post_init__``, so a bad value fails
where the config is built, with a message that names the field and what is allowed::

    DetectionConfig(min_score=5)
    ConfigError: detection.min_score must be a number from 0.05 to 0.99; got 5
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Callable

Rule = Callable[[object], "str | None"]  # None: fine; else what is allowed ("a number from 0 to 1")


class ConfigError(ValueError):
    """A setting is unknown or out of range; the message names it and says what is allowed."""


def number(lo, hi, kind=numbers.Real) -> Rule:
    def check(v):
        if isinstance(v, bool) or not isinstance(v, kind) or not lo <= v <= hi:
            what = "a whole number" if kind is numbers.Integral else "a number"
            return f"{what} from {lo} to {hi}"
        return None
    return check


def whole(lo, hi) -> Rule:
    return number(lo, hi, numbers.Integral)


def choice(*allowed, suffixes: tuple[str, ...] = ()) -> Rule:
    def check(v):
        if v in allowed or (suffixes and isinstance(v, str) and v.endswith(tuple(suffixes))):
            return None
        extra = f" or a {' / '.join(suffixes)} path" if suffixes else ""
        return f"one of {', '.join(map(repr, allowed))}{extra}"
    return check


def boolean(v) -> str | None:
    return None if isinstance(v, bool) else "True or False"


def text(v) -> str | None:
    return None if isinstance(v, str) and v else "a non-empty text"


def validate(obj, section: str, rules: dict[str, Rule]) -> None:
    """Check every field of the dataclass ``obj`` against ``rules``; raise :class:`ConfigError` on the first bad one."""
    for f in dataclasses.fields(obj):
        rule = rules.get(f.name)
        if rule is None:
            raise ConfigError(f"{section}.{f.name} has no rule (a new field needs one in its RULES)")
        value = getattr(obj, f.name)
        problem = rule(value)
        if problem:
            raise ConfigError(f"{section}.{f.name} must be {problem}; got {value!r}")
