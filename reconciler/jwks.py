"""RequestAuthentication key sets: the ones the reconciler fetches (a rule's `jwksUri`, or the `jwks_uri` its
issuer's OpenID discovery document names), keeps and refreshes for the compiler.

Istio's default (PILOT_JWT_ENABLE_REMOTE_JWKS=false) is that istiod fetches a jwksUri and inlines the key set in
each proxy's `local_jwks` (pilot/pkg/model/jwks_resolver.go); a rule with neither `jwks` nor `jwksUri` gets its
jwksUri from `ISSUER/.well-known/openid-configuration` (resolveJwksURIUsingOpenID), found again at every refresh; a
failed fetch gives the rule a fail-closed key set, so tokens are rejected rather than the proxy failing. meshward
does the same with the I/O kept here: the compiler asks for the key sources of a revision
(`compiler.build.jwks_sources`) and gets what was fetched as a build input.

What is fetched, and how, is bounded: https only, except to a loopback address (a local identity provider, tests);
a discovery document fetched over https may not send the key set fetch to plain http; no redirects; never a
link-local or cloud metadata address (jwks_resolver.go jwksBlockedIP); the rule's timeout bounds the whole fetch
(discovery and key set together); at most `max_bytes` are read per document. Key sets are kept per source and
refreshed every `refresh_interval` (Istio's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL default, 20 min), failed ones every
`retry_interval` (1 min, JwtPubKeyRefreshIntervalOnFailure); a failed refresh keeps the last good key set, as
Istio's refresher does.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from compiler.build import Discovery, FetchedJwks, KeySource

log = logging.getLogger(__name__)

MAX_BYTES = 1 << 20
# https://openid.net/specs/openid-connect-discovery-1_0.html section 4, as jwks_resolver.go openIDDiscoveryCfgURLSuffix
DISCOVERY_PATH = "/.well-known/openid-configuration"
# jwks_resolver.go: IsKnownCloudMetadataAddress, beside the link-local range
_METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")})


class FetchError(Exception):
    """Why a key source gave no key set (the text goes into the build's MW0412 warning and the log)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FetchOptions:
    max_bytes: int = MAX_BYTES
    ca_file: Path | None = None  # trusted roots for https (default: the system's)
    refresh_interval: float = 20 * 60.0
    retry_interval: float = 60.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 3xx response itself is then an error: a redirect could lead anywhere


def _scheme(uri: str) -> str:
    return urllib.parse.urlsplit(uri).scheme


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_address(host: str, port: int) -> None:
    """Refuse hosts that resolve to link-local or cloud metadata addresses (an SSRF toward instance credentials)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise FetchError(f"cannot resolve {host}: {err}") from err
    for *_, sockaddr in found:
        ip = ipaddress.ip_address(sockaddr[0])
        if ip.is_link_local or ip in _METADATA:
            raise FetchError(f"{host} resolves to {ip}, a link-local or cloud metadata address")


class Fetcher:
    """One key set per call (a GET, or two for OpenID discovery), bounded in scheme, address, time and size."""

    def __init__(self, options: FetchOptions = FetchOptions()) -> None:
        self.options = options
        context = ssl.create_default_context(cafile=str(options.ca_file) if options.ca_file else None)
        self._opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=context))

    def fetch(self, source: KeySource, timeout: float) -> FetchedJwks:
        deadline = time.monotonic() + timeout
        try:
            if isinstance(source, Discovery):
                return FetchedJwks(keys=self._discovered(source.issuer, deadline))
            return FetchedJwks(keys=self._get(source, deadline))
        except FetchError as err:
            return FetchedJwks(error=str(err))

    def _discovered(self, issuer: str, deadline: float) -> str:
        """The key set the issuer's discovery document names in `jwks_uri` (resolveJwksURIUsingOpenID: the issuer
        without one trailing slash, then the well-known path)."""
        url = issuer.removesuffix("/") + DISCOVERY_PATH
        try:
            document = json.loads(self._get(url, deadline))
        except FetchError as err:
            raise FetchError(f"{url}: {err}") from err
        except (ValueError, RecursionError) as err:
            raise FetchError(f"{url} is not a JSON discovery document") from err
        uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(uri, str) or not uri:
            raise FetchError(f"{url} names no jwks_uri")
        if _scheme(url) == "https" and _scheme(uri) != "https":
            raise FetchError(f"{url} names jwks_uri {uri}: the key set of an https issuer is fetched over https only")
        try:
            return self._get(uri, deadline)
        except FetchError as err:
            raise FetchError(f"{uri} (the jwks_uri {url} names): {err}") from err

    def _get(self, uri: str, deadline: float) -> str:
        parsed = urllib.parse.urlsplit(uri)
        host = parsed.hostname or ""
        if parsed.scheme != "https" and not (parsed.scheme == "http" and _loopback(host)):
            raise FetchError("only https is fetched (plain http only from a loopback address)")
        _check_address(host, parsed.port or (443 if parsed.scheme == "https" else 80))
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            raise FetchError("timed out")
        try:
            with self._opener.open(urllib.request.Request(uri, headers={"Accept": "application/json"}),
                                   timeout=timeout) as response:
                return self._body(response, deadline)
        except urllib.error.HTTPError as err:
            raise FetchError(f"status {err.code}") from err
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
            raise FetchError(f"{reason}") from err

    def _body(self, response: object, deadline: float) -> str:
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read(64 << 10):  # type: ignore[attr-defined]
            size += len(chunk)
            if size > self.options.max_bytes:
                raise FetchError(f"the body is over {self.options.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise FetchError("timed out reading the body")
            chunks.append(chunk)
        try:
            return b"".join(chunks).decode()
        except UnicodeDecodeError as err:
            raise FetchError("the body is not UTF-8 text") from err


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    result: FetchedJwks
    timeout: float
    fetched_at: float
    failing: bool  # the last fetch failed (the result may still be an earlier good one): retried sooner

    def due_at(self, options: FetchOptions) -> float:
        return self.fetched_at + (options.retry_interval if self.failing else options.refresh_interval)


class KeySets:
    """The key sets of the sources (jwksUris, discovered issuers) the last build asked for. `resolve` fetches the
    ones not held yet (in parallel, each bounded by its timeout); `refresh` fetches the held ones again when due
    and says whether any changed, so the reconciler compiles the serving commit again. Thread-safe."""

    def __init__(self, fetcher: Fetcher | None = None) -> None:
        self._fetcher = fetcher or Fetcher()
        self._lock = threading.Lock()
        self._entries: dict[KeySource, _Entry] = {}
        self.generation = 0  # bumped whenever a held key set changes

    def current(self) -> dict[KeySource, FetchedJwks]:
        with self._lock:
            return {source: e.result for source, e in self._entries.items()}

    def resolve(self, wanted: Mapping[KeySource, float]) -> dict[KeySource, FetchedJwks]:
        """The key sets of `wanted` (source -> timeout in seconds); sources no longer wanted are dropped."""
        with self._lock:
            self._entries = {u: e for u, e in self._entries.items() if u in wanted}
            missing = {u: t for u, t in wanted.items() if u not in self._entries}
        self._store(self._fetch_all(missing), wanted, keep_good=False)
        return self.current()

    def refresh(self, now: float | None = None) -> bool:
        """Fetch again the held key sets that are due; True when one of them changed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = {u: e.timeout for u, e in self._entries.items() if now >= e.due_at(self._fetcher.options)}
        if not due:
            return False
        before = self.generation
        self._store(self._fetch_all(due), due, keep_good=True)
        return self.generation != before

    def next_due(self) -> float:
        """Seconds until the next refresh is due (the refresh interval when nothing is held)."""
        opts = self._fetcher.options
        now = time.monotonic()
        with self._lock:
            waits = [e.due_at(opts) - now for e in self._entries.values()]
        return max(0.0, min(waits, default=opts.refresh_interval))

    def _fetch_all(self, uris: Mapping[KeySource, float]) -> dict[KeySource, FetchedJwks]:
        if not uris:
            return {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(uris))) as pool:
            futures = {uri: pool.submit(self._fetcher.fetch, uri, timeout) for uri, timeout in uris.items()}
            return {uri: f.result() for uri, f in futures.items()}

    def _store(self, results: Mapping[KeySource, FetchedJwks], timeouts: Mapping[KeySource, float], *,
               keep_good: bool) -> None:
        now = time.monotonic()
        with self._lock:
            for uri, result in results.items():
                old = self._entries.get(uri)
                failing = bool(result.error)
                if failing:
                    log.warning("key set of %s: %s", uri, result.error)
                if keep_good and old is not None and failing and not old.result.error:
                    result = old.result  # a failed refresh keeps the last good key set
                self._entries[uri] = _Entry(result, timeouts[uri], now, failing)
                if old is None or old.result != result:
                    self.generation += 1
