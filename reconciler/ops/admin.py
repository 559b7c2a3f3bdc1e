"""The admin HTTP endpoint (default 127.0.0.1:15014, Istio's monitoring port): health, metrics, status, debug,
the mesh page and the push webhook.

A deliberately small HTTP/1.1 server on `asyncio.start_server`, in the same event loop as ADS, so handlers read the
live status without locks or threads. One request per connection (`Connection: close`); header size, body size and
read time are bounded, and anything malformed gets a 4xx instead of reaching a handler. Who may ask what is
exposure.py's: `/debug/*` only from loopback at a loopback Host, the rest only at a Host that DNS rebinding cannot
produce (`exposure.host_allowed`), but for the probes and the signed webhook, which answer anyone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import json
import logging
import ssl as ssl_mod
import urllib.parse
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from reconciler.git import webhook as webhook_mod
from reconciler.ops import exposure, mesh_page
from reconciler.ops import metrics as metrics_mod
from reconciler.ops.status import Status

log = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 64 * 1024
_MAX_BODY_BYTES = 1024 * 1024  # GitHub caps webhook payloads at 25 MB, but a push of policy files is small
_READ_TIMEOUT_S = 10.0
# Answered whatever the Host: the probes tell nothing (a kubelet may name any Host), and /webhook authenticates
# each call by its signature (behind an ingress it is called by the public name).
_ANY_HOST = frozenset({"/healthz", "/readyz", "/webhook"})
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
            413: "Payload Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    peer: str = ""  # the client's address


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()  # more response headers (the mesh page's Content-Security-Policy)

    @staticmethod
    def text(status: int, text: str) -> Response:
        return Response(status, (text + "\n").encode())

    @staticmethod
    def json(status: int, obj: Any) -> Response:
        body = json.dumps(obj, indent=2, sort_keys=True, default=_jsonable).encode() + b"\n"
        return Response(status, body, "application/json")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Unavailable(Exception):
    """Raised by a debug callable: the server has nothing to answer with yet (503)."""


Handler = Callable[[Request], Awaitable[Response]]


class AdminServer:
    """Serves the admin routes. `proxies` and `config` are wired by the caller to the snapshot cache."""

    def __init__(self, *, status: Callable[[], Status], metrics: metrics_mod.Metrics,
                 webhook: webhook_mod.WebhookHandler | None = None, proxies: Callable[[], Any] | None = None,
                 config: Callable[[str], Any] | None = None, describe: Callable[[str], Any] | None = None,
                 mesh: Callable[[], Awaitable[Any]] | None = None, host: str = "127.0.0.1",
                 port: int = 15014, allowed_hosts: Collection[str] = ()) -> None:
        self._status = status
        self._metrics = metrics
        self._webhook = webhook
        self._proxies = proxies
        self._config = config
        self._describe = describe
        self._mesh = mesh
        self._page = mesh_page.load() if mesh is not None else None
        self._host = host
        self._port = port
        self._allowed_hosts = frozenset(h.lower() for h in allowed_hosts)  # names beside IPs and localhost
        self._server: asyncio.Server | None = None
        self._routes: dict[str, tuple[str, Handler]] = {
            "/healthz": ("GET", self._healthz), "/readyz": ("GET", self._readyz),
            "/metrics": ("GET", self._metrics_page), "/status": ("GET", self._status_page),
            "/debug/proxies": ("GET", self._debug_proxies), "/debug/config": ("GET", self._debug_config),
            "/debug/describe": ("GET", self._debug_describe),
            "/mesh": ("GET", self._mesh_page), "/mesh/graph": ("GET", self._mesh_graph),
            "/webhook": ("POST", self._webhook_page),
        }

    @property
    def port(self) -> int:
        """The bound port (useful when constructed with port 0)."""
        assert self._server is not None and self._server.sockets, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await start_http(self._dispatch, self._host, self._port)
        log.info("admin HTTP on http://%s:%d", self._host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _dispatch(self, request: Request) -> Response:
        route = self._routes.get(request.path)
        if route is None:
            return Response.text(404, f"no such endpoint: {request.path}")
        method, handler = route
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        allowed = (method, "HEAD") if method == "GET" else (method,)
        if request.method not in allowed:
            return Response.text(405, f"{request.path} accepts {method}")
        try:
            return await handler(request)
        except HttpError:
            raise
        except Exception:  # a handler bug answers 500; the server keeps going
            log.exception("admin handler %s failed", request.path)
            return Response.text(500, "internal error")

    def _refusal(self, request: Request) -> Response | None:
        """403 for a client the path is not served to (exposure.py), None to answer it."""
        host = request.headers.get("host", "")
        if request.path.startswith("/debug/"):
            # No authentication exists yet, so nothing authenticates a remote client: refuse (exposure.py).
            if not exposure.is_loopback(request.peer):
                return Response.text(403, "/debug/* is served to loopback clients only")
            if not exposure.is_loopback(exposure.host_name(host)):
                return Response.text(403, f"/debug/* is served only at a loopback Host (127.0.0.1, [::1], "
                                          f"localhost), not at Host {host!r}: a web page whose name points here "
                                          "(DNS rebinding) must not read it")
        elif request.path not in _ANY_HOST and not exposure.host_allowed(host, self._allowed_hosts):
            return Response.text(403, f"Host {host!r} is not a name of this admin server: ask for it by IP "
                                      "address or localhost, or start serve with --admin-allowed-host NAME "
                                      "(a name a web page can point here by DNS rebinding is refused)")
        return None

    # Routes.

    async def _healthz(self, _: Request) -> Response:
        return Response.text(200, "ok")

    async def _readyz(self, _: Request) -> Response:
        # Readiness is the server's, not the mesh's: a proxy NACKing the served config makes /status say Degraded
        # (and `meshward status` exit 1), never a failed probe. Failing it would take this replica out of its
        # Service and disconnect every proxy, and a restart cannot make a proxy accept a config (Argo CD reports
        # health "Degraded" the same way, beside a running controller).
        status = self._status()
        if not status.ready:
            return Response.text(503, "not ready: no good snapshot published yet")
        if status.nacks:
            return Response.text(200, f"ready (degraded: {len({n.node for n in status.nacks})} proxies reject "
                                      "the served config, see /status)")
        return Response.text(200, "ready")

    async def _metrics_page(self, _: Request) -> Response:
        return Response(200, self._metrics.render(), metrics_mod.CONTENT_TYPE)

    async def _status_page(self, _: Request) -> Response:
        return Response.json(200, self._status().to_json())

    async def _mesh_page(self, _: Request) -> Response:
        if self._page is None:
            return Response.text(404, "the mesh page is not wired")
        return Response(200, self._page.body, "text/html; charset=utf-8", self._page.headers)

    async def _mesh_graph(self, _: Request) -> Response:
        if self._mesh is None:
            return Response.text(404, "the mesh page is not wired")
        return Response.json(200, await self._mesh())

    async def _debug_proxies(self, _: Request) -> Response:
        if self._proxies is None:
            return Response.text(404, "no snapshot cache wired")
        return Response.json(200, await _maybe_await(self._proxies()))

    async def _debug_config(self, request: Request) -> Response:
        return await self._per_node(request, self._config)

    async def _debug_describe(self, request: Request) -> Response:
        return await self._per_node(request, self._describe)

    async def _per_node(self, request: Request, lookup: Callable[[str], Any] | None) -> Response:
        """?node=NODE_ID answered by `lookup`: 404 with one line for an unknown proxy, 503 when nothing is served."""
        if lookup is None:
            return Response.text(404, "no snapshot cache wired")
        node = (request.query.get("node") or [""])[0]
        if not node:
            return Response.text(400, "missing ?node=NODE_ID")
        try:
            found = await _maybe_await(lookup(node))
        except LookupError as err:
            return Response.text(404, " ".join(str(err.args[0] if err.args else err).split()))
        except Unavailable as err:
            return Response.text(503, str(err))
        if found is None:
            return Response.text(404, f"no config for node {node!r}")
        return Response.json(200, found)

    async def _webhook_page(self, request: Request) -> Response:
        if self._webhook is None:
            return Response.text(404, "webhook not configured")
        outcome = self._webhook.handle(request.headers, request.body)
        self._metrics.webhooks.labels(result=str(outcome.verdict)).inc()
        if outcome.status_code >= 400:
            log.warning("webhook refused: %s", outcome.detail)
        return Response.json(outcome.status_code, outcome.to_json())


async def start_http(dispatch: Handler, host: str, port: int, *,
                     ssl: ssl_mod.SSLContext | None = None) -> asyncio.Server:
    """A server answering each connection's one request with `dispatch`, with this module's bounds (header and
    body size, read time) and 4xx answers to malformed requests; over TLS with `ssl` (the injection webhook)."""
    return await asyncio.start_server(functools.partial(_exchange, dispatch=dispatch), host, port,
                                      limit=_MAX_HEADER_BYTES, ssl=ssl)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, dispatch: Handler) -> None:
    try:
        try:
            request = await asyncio.wait_for(_read_request(reader), timeout=_READ_TIMEOUT_S)
            request = dataclasses.replace(request, peer=_peer_host(writer))
            response = await dispatch(request)
        except HttpError as exc:
            response = Response.text(exc.status, str(exc))
        except TimeoutError:
            response = Response.text(408, "request not received in time")
        writer.write(_render(response))
        await asyncio.wait_for(writer.drain(), timeout=_READ_TIMEOUT_S)
    except (ConnectionError, TimeoutError):
        pass  # the client went away; nothing to tell it
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def _peer_host(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def _jsonable(value: Any) -> Any:
    """Debug callables may return dataclasses (e.g. ADS `ProxyStatus`), mappings, sets or protobuf-ish objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    return str(value)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _read_request(reader: asyncio.StreamReader) -> Request:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request head too large") from None
    except asyncio.IncompleteReadError:
        raise HttpError(400, "incomplete request") from None
    method, target, headers = _parse_head(head)
    body = await _read_body(reader, headers)
    url = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    return Request(method, url.path, query, headers, body)


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    if not method.isalpha() or not target.startswith("/") or not version.startswith("HTTP/1."):
        raise HttpError(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, "malformed header line")
        headers[name.lower()] = value.strip()
    return method.upper(), target, headers


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    if "transfer-encoding" in headers:
        raise HttpError(411, "chunked bodies are not accepted; send Content-Length")
    raw = headers.get("content-length", "0")
    if not raw.isdigit():
        raise HttpError(400, "bad Content-Length")
    length = int(raw)
    if length > _MAX_BODY_BYTES:
        raise HttpError(413, "body too large")
    try:
        return await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError:
        raise HttpError(400, "body shorter than Content-Length") from None


def _render(response: Response) -> bytes:
    head = (f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in response.headers)
            + "Connection: close\r\n\r\n")
    return head.encode("latin-1") + response.body
