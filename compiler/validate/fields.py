"""Field formats Istio validates: durations, RE2 regexes, string matches, header names, retry conditions,
percentages and protocol names. Each check returns an error message, or None when the value is valid."""

from __future__ import annotations

import re
from typing import Any

import re2

from compiler import units
from compiler.validate import envoy_limits

# Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on conditions (router filter docs).
RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited", "retriable-4xx",
    "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
})
# Istio's protocol names (pkg/config/protocol), compared case-insensitively as Istio does.
PROTOCOLS = frozenset({"HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "HTTP_PROXY", "MONGO", "MYSQL", "REDIS", "TCP",
                       "TLS", "UDP", "UNSUPPORTED", "HBONE", "DOUBLEHBONE"})
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
_HEADER_NAME = re.compile(r"^[-_A-Za-z0-9]+$")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def duration(value: str | None, *, minimum_ms: float = 1.0) -> str | None:
    """Istio durations: a valid duration, at least 1ms, no finer than milliseconds."""
    if value is None:
        return None
    ms = units.parse_duration_ms(value)
    if ms is None:
        return f'"{value}" is not a valid duration (use e.g. 1.5s, 300ms, 1m)'
    if ms < minimum_ms:
        return f'duration "{value}" must be at least {minimum_ms:g}ms'
    if abs(ms - round(ms)) > 1e-9:
        return f'duration "{value}": only durations to millisecond precision are supported'
    return envoy_limits.duration_seconds(ms / 1000)


def regex(pattern: str) -> str | None:
    """Envoy compiles safe_regex with Google RE2: reject what RE2 rejects (backreferences, lookaround)."""
    if pattern == "":
        return "regex string match should not be empty"
    try:
        re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as err:
        reason = err.args[0] if err.args else err
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        return f'invalid RE2 regex "{pattern}": {text}'
    return None


def string_match(match: Any) -> tuple[str, str] | None:
    """(code, problem) for a StringMatch: exactly one of exact / prefix / regex; the regex valid under RE2."""
    if match is None:
        return ("MW0212", "string match cannot be null")
    set_fields = [name for name in ("exact", "prefix", "regex") if getattr(match, name) is not None]
    if len(set_fields) != 1:
        return ("MW0212", "a string match needs exactly one of exact, prefix or regex"
                + (f" (has {', '.join(set_fields)})" if set_fields else ""))
    if match.regex is not None:
        problem = regex(match.regex)
        if problem:
            return ("MW0206", problem)
        problem = envoy_limits.regex_program_size(match.regex)
        return ("MW0225", problem) if problem else None
    return None


def header_name(name: str) -> str | None:
    if not name:
        return "header name cannot be empty"
    if not _HEADER_NAME.match(name):
        return f'header name "{name}" is not a valid header name'
    return envoy_limits.header_name(name)


def header_operation_name(name: str) -> str | None:
    """Envoy refuses to add, set or remove pseudo-headers and Host (HeaderUtility::isModifiableHeader, used by
    router/header_parser.cc): ":-prefixed or host headers may not be modified". Istio turns a request `set` of the
    authority into a host rewrite; here that is `rewrite.authority`."""
    if name.startswith(":") or name.lower() == "host":
        return (f'header "{name}" cannot be modified: Envoy manages pseudo-headers and Host (to change the '
                "authority, use rewrite.authority)")
    return header_name(name)


def retry_on(value: str) -> str | None:
    for raw in value.split(","):
        condition = raw.strip()
        if condition in RETRY_ON:
            continue
        if condition.isdigit() and 100 <= int(condition) <= 599:
            continue
        return f'"{condition}" is not a valid retryOn condition or HTTP status code'
    return None


def percentage(value: float | None) -> str | None:
    if value is not None and not 0 <= value <= 100:
        return f"percentage {value:g} must be between 0 and 100"
    return None


def protocol(name: str | None) -> str | None:
    if name is not None and name.upper() not in PROTOCOLS:
        return f'unknown protocol "{name}"; use one of {", ".join(sorted(PROTOCOLS))}'
    return None
