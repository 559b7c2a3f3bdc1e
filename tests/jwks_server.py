"""A key server for jwksUri tests: http or https (a CA made at run time) on 127.0.0.1, a free port, routes the
test can change while it runs, and a count of the requests each path got."""

from __future__ import annotations

import base64
import collections
import dataclasses
import http.server
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pki import tls_server_files

ADDRESS = "127.0.0.1"


@dataclasses.dataclass
class Route:
    body: bytes
    status: int = 200
    delay: float = 0.0  # seconds before the body is written
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class KeyServer:
    base: str  # scheme://127.0.0.1:PORT
    ca_file: Path | None  # the CA of an https server
    routes: dict[str, Route]
    hits: collections.Counter[str]

    def url(self, path: str) -> str:
        return self.base + path


def _handler(routes: dict[str, Route], hits: collections.Counter[str]) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits[self.path] += 1
            route = routes.get(self.path, Route(b"not found", 404))
            time.sleep(route.delay)
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            try:
                self.wfile.write(route.body)
            except OSError:  # the client gave up (a timeout test)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving(directory: Path | None = None, routes: dict[str, Route] | None = None) -> Iterator[KeyServer]:
    """https when `directory` is given (its CA and server certificate are written there), else http."""
    table = dict(routes or {})
    hits: collections.Counter[str] = collections.Counter()
    server = http.server.ThreadingHTTPServer((ADDRESS, 0), _handler(table, hits))
    server.daemon_threads = True
    ca = None
    if directory is not None:
        ca, cert, key = tls_server_files(directory, ADDRESS)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        scheme = "https" if directory is not None else "http"
        yield KeyServer(f"{scheme}://{ADDRESS}:{server.server_address[1]}", ca, table, hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks(key: rsa.RSAPrivateKey, kid: str = "k1") -> str:
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    return json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "e": b64(b"\x01\x00\x01"),
                                 "n": b64(n)}]})


def token(key: rsa.RSAPrivateKey, issuer: str, kid: str = "k1", **claims: Any) -> str:
    head = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps({"iss": issuer, "sub": "alice", "exp": int(time.time()) + 600, **claims}).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64(signature)}"
