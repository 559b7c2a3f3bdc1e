"""A tiny stand-in for kube-apiserver, for testing the registry's list/watch code against real HTTP.

Why it exists: no kube-apiserver can run on these machines, yet the registry must be exercised through the official
`kubernetes` client and its `Watch`, byte for byte as against a cluster. This server speaks just enough of the API:
cluster-wide list (`GET /api/v1/services`, `/api/v1/pods`, `/api/v1/namespaces`, `/apis/discovery.k8s.io/v1/
endpointslices`, and Istio's `/apis/networking.istio.io/v1/<plural>` and the other Istio kinds serve watches) with
`metadata.resourceVersion`, and `?watch=true&resourceVersion=N` as
newline-delimited JSON events in a chunked HTTP/1.1 response, and `fieldSelector` terms on `type`
(`type=X`, `type!=X`, comma-separated, as for Secrets), (ADDED / MODIFIED / DELETED / BOOKMARK / ERROR), the way
the apiserver does: a watch from a compacted resourceVersion gets a 200 with one ERROR event whose Status has code
410 ("too old resource version").

`POST /apis/authentication.k8s.io/v1/tokenreviews` answers from tokens a test registers (`add_token`), as the
apiserver's authenticator would.

Secrets can also be read and created one at a time (`GET /api/v1/namespaces/NS/secrets/NAME`, 404 when absent;
`POST /api/v1/namespaces/NS/secrets`, 409 Conflict when the name is taken), as the CA keeps its root in one.

Test controls: `apply` / `delete` (one global resourceVersion, bumped per write, as etcd's revision), `bookmark`,
`compact`, `drop_connections`, `fail_requests`, `slow_requests` (an overloaded server), `garbage_requests` (a proxy
in the way answering what is not the API), and `stop` / `start` on the same port (state survives, as etcd's
would). Every handler thread is joined on stop, so tests leak no threads.
"""

from __future__ import annotations

import copy
import dataclasses
import http.server
import json
import re
import socket
import threading
import time
import urllib.parse
from typing import Any, Self

from reconciler.kube import istio_kinds

# path -> (apiVersion, kind) of the items it serves.
RESOURCES: dict[str, tuple[str, str]] = {
    "/api/v1/services": ("v1", "Service"),
    "/api/v1/secrets": ("v1", "Secret"),
    "/api/v1/pods": ("v1", "Pod"),
    "/api/v1/namespaces": ("v1", "Namespace"),
    "/apis/discovery.k8s.io/v1/endpointslices": ("discovery.k8s.io/v1", "EndpointSlice"),
    "/apis/networking.istio.io/v1/virtualservices": ("networking.istio.io/v1", "VirtualService"),
    "/apis/networking.istio.io/v1/destinationrules": ("networking.istio.io/v1", "DestinationRule"),
    "/apis/networking.istio.io/v1/serviceentries": ("networking.istio.io/v1", "ServiceEntry"),
    # the rest of Istio's kinds, which serve watches read-only for drift (reconciler/kube/istio_kinds.py)
    **{f"/apis/{group}/{version}/{plural}": (f"{group}/{version}", kind)
       for group, version, kind, plural in istio_kinds.KINDS},
}
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
NAMESPACED_SECRET = re.compile(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?")
_PATH_OF_KIND = {**{kind: path for path, (_, kind) in RESOURCES.items()}, "TokenReview": TOKEN_REVIEWS}


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    rv: int
    seq: int  # position in the server's log: live watches follow it
    path: str
    type: str  # ADDED / MODIFIED / DELETED / BOOKMARK
    obj: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    path: str
    query: dict[str, str]

    @property
    def watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")


def _selected(obj: dict[str, Any], selector: str) -> bool:
    """The apiserver's field selector, for the only field we filter on: `type` (Secrets)."""
    for term in filter(None, selector.split(",")):
        negate = "!=" in term
        field, _, value = term.partition("!=" if negate else "=")
        if field == "type" and (obj.get("type", "") == value) == negate:
            return False
    return True


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class _State:
    """The 'etcd' of the fake: objects, the event log, and who is connected. Shared by restarts."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.tokens: dict[str, dict[str, Any]] = {}  # bearer token -> TokenReview status
        self.rv = 100
        self.compacted = 0  # watches from a resourceVersion below this get 410
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.log: list[Event] = []
        self.seq = 0  # next log position
        self.requests: list[Request] = []
        self.fail: dict[str, tuple[int, bool]] = {}  # path -> (HTTP status to answer instead, watches only)
        self.drop_epoch = 0  # bumped by drop_connections(): live watches end
        self.expire_epoch = 0  # bumped by compact(expire_live=True): live watches get 410
        self.delay = 0.0  # seconds every request waits before it is answered
        self.garbage: set[str] = set()  # paths answered with a 200 that is not JSON


class FakeApiServer:
    """A restartable ThreadingHTTPServer on 127.0.0.1 serving `RESOURCES` from in-memory state."""

    def __init__(self, port: int = 0) -> None:
        self._state = _State()
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.state = self._state
        server.fake = self
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-apiserver-{self._port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, cut every open connection, and join every handler thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        self._drop(server)  # live watch loops end, idle keep-alive reads see EOF
        server.server_close()  # joins handler threads (block_on_close)
        thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- controls
    def apply(self, obj: dict[str, Any], *, silent: bool = False) -> int:
        """Create or replace an object (manifest-shaped dict); returns its new resourceVersion.

        `silent`: no watch event, as if the event had been compacted away before any watcher saw it.
        """
        obj = copy.deepcopy(obj)
        path = _PATH_OF_KIND[obj["kind"]]
        meta = obj.setdefault("metadata", {})
        key = (path, meta.get("namespace", "default"), meta["name"])
        with self._state.cond:
            self._state.rv += 1
            meta["resourceVersion"] = str(self._state.rv)
            event = "MODIFIED" if key in self._state.objects else "ADDED"
            self._state.objects[key] = obj
            if not silent:
                self._record(self._state.rv, path, event, obj)
            return self._state.rv

    def add_token(self, token: str, username: str, audiences: tuple[str, ...] = ("istio-ca",)) -> None:
        """A token the apiserver authenticates as `username` for `audiences`."""
        with self._state.cond:
            self._state.tokens[token] = {"authenticated": True, "user": {"username": username},
                                         "audiences": list(audiences)}

    def delete(self, kind: str, namespace: str, name: str, *, silent: bool = False) -> int:
        path = _PATH_OF_KIND[kind]
        with self._state.cond:
            obj = self._state.objects.pop((path, namespace, name))
            self._state.rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self._state.rv)
            if not silent:
                self._record(self._state.rv, path, "DELETED", obj)
            return self._state.rv

    def bump(self, n: int = 1) -> int:
        """Writes to other resources: the global resourceVersion moves on, no event for ours."""
        with self._state.cond:
            self._state.rv += n
            return self._state.rv

    def bookmark(self, kind: str) -> int:
        """Send a BOOKMARK at the current resourceVersion to watches of `kind` that allow bookmarks."""
        path = _PATH_OF_KIND[kind]
        api_version, _ = RESOURCES[path]
        with self._state.cond:
            rv = self._state.rv
            obj = {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": str(rv)}}
            self._record(rv, path, "BOOKMARK", obj)
            return rv

    def compact(self, *, expire_live: bool = False) -> int:
        """Forget all history: a watch from any older resourceVersion now gets 410 Gone.

        `expire_live`: live watches also get an ERROR 410 event and end, as the apiserver does to a watcher
        that fell behind its watch cache.
        """
        with self._state.cond:
            self._state.compacted = self._state.rv
            self._state.log.clear()
            if expire_live:
                self._state.expire_epoch += 1
                self._state.cond.notify_all()
            return self._state.rv

    def drop_connections(self) -> None:
        """End every live watch stream abruptly (no terminating chunk), as a broken connection would."""
        self._drop(self._server)

    def _drop(self, server: _Server | None) -> None:
        with self._state.cond:
            self._state.drop_epoch += 1
            self._state.cond.notify_all()
        if server is not None:
            server.close_connections()

    def fail_requests(self, kind: str, status: int | None, *, watch_only: bool = False) -> None:
        """Answer requests for `kind` (only watches if `watch_only`) with HTTP `status` until called with None."""
        with self._state.cond:
            if status is None:
                self._state.fail.pop(_PATH_OF_KIND[kind], None)
            else:
                self._state.fail[_PATH_OF_KIND[kind]] = (status, watch_only)

    def slow_requests(self, delay: float) -> None:
        """Answer every request `delay` seconds late (0: at once again)."""
        with self._state.cond:
            self._state.delay = delay

    def garbage_requests(self, kind: str, on: bool = True) -> None:
        """Answer lists and watches of `kind` with a 200 whose body is not the API's (an HTML error page)."""
        with self._state.cond:
            (self._state.garbage.add if on else self._state.garbage.discard)(_PATH_OF_KIND[kind])

    @property
    def resource_version(self) -> int:
        with self._state.cond:
            return self._state.rv

    def requests(self, kind: str, *, watch: bool | None = None) -> list[Request]:
        path = _PATH_OF_KIND[kind]
        with self._state.cond:
            return [r for r in self._state.requests if r.path == path and (watch is None or r.watch == watch)]

    def all_requests(self) -> list[Request]:
        """Every GET and POST received so far, in order, whatever the path."""
        with self._state.cond:
            return list(self._state.requests)

    def wait_for_requests(self, kind: str, count: int, *, watch: bool | None = None, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests(kind, watch=watch)) >= count:
                return True
            time.sleep(0.02)
        return False

    def _record(self, rv: int, path: str, type_: str, obj: dict[str, Any]) -> None:
        self._state.log.append(Event(rv, self._state.seq, path, type_, obj))
        self._state.seq += 1
        self._state.cond.notify_all()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins handler threads: no leaks between tests
    state: _State
    fake: FakeApiServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.closing = False
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked watch responses, keep-alive lists
    server: _Server
    timeout = 30  # an idle keep-alive connection never pins a thread forever
    _selector = ""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms per request.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:  # http.server's naming
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        state = self.server.state
        with state.cond:
            state.requests.append(Request(url.path, query))
            fail = state.fail.get(url.path)
            delay, garbage = state.delay, url.path in state.garbage
        time.sleep(delay)
        if garbage:
            self._raw(200, b"<html><body>502 Bad Gateway</body></html>\n", "text/html")
        elif (named := NAMESPACED_SECRET.fullmatch(url.path)) and named[2]:
            found = self._secret(named[1], named[2])
            self._json(200 if found else 404, found or _status(404, "NotFound", f'secrets "{named[2]}" not found'))
        elif url.path not in RESOURCES:
            self._json(404, _status(404, "NotFound", f"the server could not find the requested resource {url.path}"))
        elif fail is not None and (not fail[1] or query.get("watch") in ("true", "1")):
            self._json(fail[0], _status(fail[0], "InternalError" if fail[0] != 410 else "Expired", "injected"))
        elif query.get("watch") in ("true", "1"):
            self._watch(url.path, query)
        else:
            self._list(url.path, query.get("fieldSelector", ""))

    def do_POST(self) -> None:  # http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if (named := NAMESPACED_SECRET.fullmatch(urllib.parse.urlsplit(self.path).path)) and not named[2]:
            self._create_secret(named[1], body)
            return
        if urllib.parse.urlsplit(self.path).path != TOKEN_REVIEWS:
            self._json(404, _status(404, "NotFound", f"the server could not find the requested resource {self.path}"))
            return
        state = self.server.state
        with state.cond:
            state.requests.append(Request(TOKEN_REVIEWS, {}))
            status = state.tokens.get(body.get("spec", {}).get("token", ""))
        body["status"] = status or {"authenticated": False, "error": "invalid bearer token"}
        self._json(201, body)

    def _secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        state = self.server.state
        with state.cond:
            state.requests.append(Request(f"/api/v1/namespaces/{namespace}/secrets/{name}", {}))
            found = state.objects.get(("/api/v1/secrets", namespace, name))
            return copy.deepcopy(found) if found else None

    def _create_secret(self, namespace: str, body: dict[str, Any]) -> None:
        state = self.server.state
        body.setdefault("metadata", {})["namespace"] = namespace
        key = ("/api/v1/secrets", namespace, body["metadata"].get("name", ""))
        body.update(kind="Secret", apiVersion="v1")
        with state.cond:  # check and create at once (the lock is reentrant): of two creates, one gets 409
            state.requests.append(Request(f"/api/v1/namespaces/{namespace}/secrets", {}))
            taken = key in state.objects
            if not taken:
                self.server.fake.apply(body)
        if taken:
            self._json(409, _status(409, "AlreadyExists", f'secrets "{key[2]}" already exists'))
        else:
            self._json(201, body)

    def _json(self, code: int, body: dict[str, Any]) -> None:
        self._raw(code, json.dumps(body).encode(), "application/json")

    def _raw(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _list(self, path: str, selector: str) -> None:
        api_version, kind = RESOURCES[path]
        state = self.server.state
        with state.cond:
            items = [copy.deepcopy(o) for (p, _, _), o in sorted(state.objects.items())
                     if p == path and _selected(o, selector)]
            rv = state.rv
        for item in items:  # the apiserver omits kind/apiVersion on list items
            item.pop("kind", None)
            item.pop("apiVersion", None)
        self._json(200, {"kind": f"{kind}List", "apiVersion": api_version,
                         "metadata": {"resourceVersion": str(rv)}, "items": items})

    def _watch(self, path: str, query: dict[str, str]) -> None:
        since = int(query.get("resourceVersion") or 0)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self._selector = query.get("fieldSelector", "")
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if not self._stream(path, since, bookmarks=bookmarks, deadline=deadline):
                return  # dropped: no terminating chunk, the client sees a broken stream
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        self.close_connection = True

    def _stream(self, path: str, since: int, *, bookmarks: bool, deadline: float) -> bool:
        """Write events after `since` until the deadline; False when the connection was dropped."""
        state = self.server.state
        with state.cond:
            epoch, expire = state.drop_epoch, state.expire_epoch
            if since and since < state.compacted:
                msg = f"too old resource version: {since} ({state.compacted})"
                self._chunks([{"type": "ERROR", "object": _status(410, "Expired", msg)}])
                return True
            if since:  # replay what happened after `since` (bookmarks are live-only)
                backlog = [e for e in state.log if e.path == path and e.rv > since and e.type != "BOOKMARK"]
            else:  # "any" resourceVersion: synthetic ADDED for the current state, then follow
                backlog = [Event(0, 0, path, "ADDED", o) for (p, _, _), o in sorted(state.objects.items())
                           if p == path]
            cursor = state.seq
        self._send(backlog)
        while True:
            with state.cond:
                events = [e for e in state.log if e.seq >= cursor and e.path == path
                          and (bookmarks or e.type != "BOOKMARK")]
                cursor = state.seq
                if not events:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return True
                    state.cond.wait(timeout=min(remaining, 0.2))
                if state.drop_epoch != epoch:
                    return False
                if state.expire_epoch != expire:
                    msg = f"too old resource version: {since} ({state.compacted})"
                    self._chunks([{"type": "ERROR", "object": _status(410, "Expired", msg)}])
                    return True
            self._send(events)

    def _send(self, events: list[Event]) -> None:
        events = [e for e in events if e.type == "BOOKMARK" or _selected(e.obj, self._selector)]
        if events:
            self._chunks([{"type": e.type, "object": e.obj} for e in events])

    def _chunks(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            data = json.dumps(event).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
