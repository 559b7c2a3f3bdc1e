"""Istio's scalar formats: durations ("1.5s", "300ms", "1h2m") and percentages."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_MS = {"h": 3_600_000.0, "m": 60_000.0, "s": 1000.0, "ms": 1.0, "us": 0.001, "µs": 0.001, "ns": 0.000001}


def parse_duration_ms(text: str) -> float | None:
    """Milliseconds for a duration string as Istio accepts it (protobuf JSON like "1.5s" or Go style like "1m30s");
    None when it is not a duration."""
    if not isinstance(text, str) or not _DURATION.match(text.strip()):
        return None
    return sum(float(n) * _UNIT_MS[u] for n, u in _PART.findall(text.strip()))


def duration_ms(text: str) -> int:
    """Like parse_duration_ms for already-validated input, rounded to whole milliseconds."""
    value = parse_duration_ms(text)
    if value is None:
        raise ValueError(f"not a duration: {text!r}")
    return round(value)
