"""Limits Envoy enforces on what meshward emits, beyond what Istio's own validation checks.

Istio's webhook accepts some values that Envoy then refuses (the proxy NACKs, and keeps its old config while the
control plane believes it sent the new one). Each check here is one rule of Envoy's, cited where it lives, and
tests/reliability proves the set with real Envoy: a mutation that validation accepts must pass `envoy --mode
validate`. Each check returns a problem message, or None when Envoy accepts the value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

import re2

# source/common/protobuf/utility.cc, validateDurationUnifiedNoThrow: seconds above (INT64_MAX - 999999999) / 1e9
# are refused ("Duration out-of-range"); protobuf's own limit, 315576000000s, is larger.
MAX_DURATION_S = 9_223_372_035
# TcpKeepalive.keepalive_time / keepalive_interval are UInt32Value seconds (config/core/v3/address.proto), and
# a route's weighted clusters may not add up to more (source/common/router/config_impl.cc: "The sum of weights of
# all weighted clusters of route ... exceeds 4294967295").
MAX_UINT32 = 2**32 - 1
# RingHashLbConfig.minimum_ring_size and maximum_ring_size: uint64 {lte: 8388608} (config/cluster/v3/cluster.proto).
MAX_RING_SIZE = 8_388_608
# Bootstrap.stats_flush_interval: duration {lt: 300s} (config/bootstrap/v3/bootstrap.proto).
MAX_STATS_FLUSH_MS = 300_000
# MaglevLbConfig.table_size: uint64 {lte: 5000011}, and source/extensions/load_balancing_policies/maglev refuses
# a size that is not prime.
MAX_MAGLEV_TABLE_SIZE = 5_000_011
# source/common/common/regex.cc: a safe_regex whose RE2 program size is above the runtime key
# re2.max_program_size.error_level (default 100) is refused when the config loads.
MAX_REGEX_PROGRAM_SIZE = 100
# HeaderValue.key and .value: max_bytes 16384, and HTTP_HEADER_VALUE (strict: false) refuses NUL, CR and LF
# (config/core/v3/base.proto).
MAX_HEADER_BYTES = 16_384
# QueryParameterMatcher.name: min_len 1, max_bytes 1024 (config/route/v3/route_components.proto).
MAX_QUERY_PARAMETER_BYTES = 1024
_HEADER_FORBIDDEN = re.compile(r"[\x00\r\n]")
# Request and response headers_to_add values are substitution format strings (Envoy's access log format rules,
# source/common/formatter/substitution_formatter.cc): "%%" is a literal %, any other % starts a command that ends
# with %: NAME, NAME(ARGS) or NAME(ARGS):LENGTH.
_COMMAND = re.compile(r"%([A-Z0-9_]+)(\(([^)]*)\))?(:[0-9]+)?%")
# The commands meshward lets through: the stream info fields and header lookups that make sense in a header value,
# each proven accepted by Envoy in tests/reliability/test_envoy_limits.py. Any other name Envoy may or may not know,
# depending on its version and extensions; refusing it here is what keeps a NACK out of the mesh.
COMMANDS_WITH_ARGS = frozenset({"REQ", "RESP", "START_TIME", "DYNAMIC_METADATA", "FILTER_STATE", "ENVIRONMENT",
                                "UPSTREAM_METADATA", "CLUSTER_METADATA"})
COMMANDS = frozenset({
    "PROTOCOL", "UPSTREAM_PROTOCOL", "HOSTNAME", "START_TIME", "REQUESTED_SERVER_NAME", "ROUTE_NAME",
    "UPSTREAM_HOST", "UPSTREAM_CLUSTER", "UPSTREAM_LOCAL_ADDRESS", "UPSTREAM_REMOTE_ADDRESS",
    "DOWNSTREAM_REMOTE_ADDRESS", "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", "DOWNSTREAM_REMOTE_PORT",
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS", "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_LOCAL_ADDRESS", "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", "DOWNSTREAM_LOCAL_PORT",
    "DOWNSTREAM_LOCAL_URI_SAN", "DOWNSTREAM_PEER_URI_SAN", "DOWNSTREAM_LOCAL_SUBJECT", "DOWNSTREAM_PEER_SUBJECT",
    "DOWNSTREAM_PEER_ISSUER", "DOWNSTREAM_TLS_VERSION", "DOWNSTREAM_TLS_CIPHER", "DOWNSTREAM_TLS_SESSION_ID",
    "DOWNSTREAM_PEER_FINGERPRINT_256", "DOWNSTREAM_PEER_SERIAL", "CONNECTION_ID", "STREAM_ID", "RESPONSE_FLAGS",
    "RESPONSE_CODE", "RESPONSE_CODE_DETAILS", "BYTES_RECEIVED", "UPSTREAM_TRANSPORT_FAILURE_REASON",
})
# UpstreamTlsContext.sni: max_bytes 255 (extensions/transport_sockets/tls/v3/tls.proto).
MAX_SNI_BYTES = 255
# RouteConfiguration.max_direct_response_body_size_bytes, which meshward leaves at its default: 4096 bytes
# (config/route/v3/route.proto); a larger body is refused with the whole route table.
MAX_DIRECT_RESPONSE_BYTES = 4096
# RedirectAction.RedirectResponseCode (config/route/v3/route_components.proto): the codes Envoy can redirect with.
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_JWK_TYPES = frozenset({"RSA", "EC", "oct", "OKP"})
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def duration_seconds(seconds: float, *, maximum: int = MAX_DURATION_S) -> str | None:
    if seconds > maximum:
        return f"{seconds:.0f}s is above the {maximum}s Envoy accepts here"
    return None


def ring_size(size: int | None) -> str | None:
    if size is not None and size > MAX_RING_SIZE:
        return f"ring size {size} is above Envoy's maximum of {MAX_RING_SIZE}"
    return None


def maglev_table_size(size: int | None) -> str | None:
    if size is None:
        return None  # unset: Envoy's default, 65537
    if size > MAX_MAGLEV_TABLE_SIZE or size < 2 or any(size % d == 0 for d in range(2, int(size**0.5) + 1)):
        return f"maglev tableSize {size} must be a prime number no larger than {MAX_MAGLEV_TABLE_SIZE}"
    return None


def regex_program_size(pattern: str) -> str | None:
    """RE2's program size, as Envoy measures it (RE2::ProgramSize() of the pattern compiled with default options);
    None also when RE2 refuses the pattern, which fields.regex reports."""
    try:
        size = re2.compile(pattern, options=_RE2_OPTIONS).programsize
    except re2.error:
        return None
    if size > MAX_REGEX_PROGRAM_SIZE:
        return (f'regex "{_short(pattern)}" compiles to an RE2 program of size {size}, above the '
                f"{MAX_REGEX_PROGRAM_SIZE} Envoy accepts (re2.max_program_size.error_level)")
    return None


def header_name(name: str) -> str | None:
    if len(name.encode()) > MAX_HEADER_BYTES:
        return f"header name is longer than Envoy's {MAX_HEADER_BYTES} bytes"
    return None


def header_safe(value: str | None) -> str | None:
    """Envoy's HTTP_HEADER_VALUE rule (strict: false), which also guards the route's path matches, rewrites and
    redirects (RouteMatch.path/prefix, RouteAction.prefix_rewrite, host_rewrite_literal, RedirectAction,
    RegexMatchAndSubstitute.substitution)."""
    if value is not None and _HEADER_FORBIDDEN.search(value):
        return f'"{_short(value)}" cannot contain NUL, CR or LF'
    return None


def header_value(value: str) -> str | None:
    """A value for request/response headers_to_add: Envoy's header value rules, then the substitution format."""
    if _HEADER_FORBIDDEN.search(value):
        return "a header value cannot contain NUL, CR or LF"
    if len(value.encode()) > MAX_HEADER_BYTES:
        return f"header value is longer than Envoy's {MAX_HEADER_BYTES} bytes"
    return substitution_format(value)


def substitution_format(value: str) -> str | None:
    position = 0
    while (start := value.find("%", position)) >= 0:
        if value.startswith("%%", start):
            position = start + 2
            continue
        match = _COMMAND.match(value, start)
        if match is None:
            return (f'"%" at position {start} of "{_short(value)}" starts no substitution command: write "%%" for '
                    "a literal percent sign")
        problem = _command(match)
        if problem:
            return problem
        position = match.end()
    return None


def _command(match: re.Match[str]) -> str | None:
    name, args, length = match.group(1), match.group(3), match.group(4)
    if name in COMMANDS_WITH_ARGS and args is not None:
        if name in ("REQ", "RESP") and (args == "" or args.count("?") > 1):
            return f'"{match.group(0)}" needs one header name (or NAME?ALTERNATIVE) in parentheses'
        return None
    if name in COMMANDS_WITH_ARGS and name != "START_TIME":
        return f'"{match.group(0)}" needs its argument in parentheses, e.g. %{name}(...)%'
    if name in COMMANDS and args is None and length is None:
        return None
    if name in COMMANDS:
        return f'"{match.group(0)}": %{name}% takes no argument or length'
    return (f'unknown substitution command "%{name}%": use one Envoy knows (e.g. %REQ(x-name)%, '
            '%DOWNSTREAM_REMOTE_ADDRESS%, %HOSTNAME%; the list is in compiler/validate/envoy_limits.py), '
            'or write "%%" for a literal percent sign')


def server_name(name: str) -> str | None:
    """A filter chain's server_names take exact names and *.suffix wildcards: Envoy refuses a lone "*" ("partial
    wildcards are not supported in server_names", source/common/listener_manager/filter_chain_manager_impl.cc)."""
    if name == "*":
        return 'sniHosts "*" is not a name Envoy can match (use exact names or *.example.com)'
    return None


def sni(name: str | None) -> str | None:
    if name is not None and len(name.encode()) > MAX_SNI_BYTES:
        return f"sni is longer than the {MAX_SNI_BYTES} bytes Envoy accepts"
    return None


def direct_response_body(string: str | None, encoded: str | None) -> str | None:
    """The body as Envoy gets it: the string, or the bytes decoded from base64."""
    if encoded is not None:
        try:
            size = len(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            return "body.bytes is not valid base64"
    else:
        size = len((string or "").encode())
    if size > MAX_DIRECT_RESPONSE_BYTES:
        return f"the body is {size} bytes; Envoy accepts direct responses up to {MAX_DIRECT_RESPONSE_BYTES} bytes"
    return None


def jwks(text: str) -> str | None:
    """An inline JSON Web Key Set as Envoy's jwt_authn reads it (jwt_verify_lib): a JSON object with a "keys" list,
    whose keys have a known "kty"; text that is not one fails the whole listener."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes (a fetched body)
        return "jwks is not JSON: give a JSON Web Key Set ({\"keys\": [...]})"
    keys = parsed.get("keys") if isinstance(parsed, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, dict) and k.get("kty") in _JWK_TYPES for k in keys):
        return 'jwks needs a "keys" list of keys of kty RSA, EC, oct or OKP'
    return None


def absolute_path(path: str | None) -> str | None:
    """Certificate and key files are read by the proxy: a relative path depends on its working directory."""
    if path and not path.startswith("/"):
        return f'"{path}" must be an absolute path on the proxy\'s host'
    return None


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
