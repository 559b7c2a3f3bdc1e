"""The injection webhook's HTTPS server in `serve --inject-webhook`: POST /inject (admission.py), on its own port
(Istio's 15017), because the API server calls webhooks only over TLS, with a certificate it checks against the
configuration's caBundle.

The certificate is the operator's (`--inject-webhook-cert/--inject-webhook-key`) or made at start by the mesh CA
for the addresses it serves on and the `--ca-dns-name` names (the Service's), so caBundle is the CA's root. Either
way it is read once, at start.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

from reconciler.identity import private_files
from reconciler.inject import admission, sidecar
from reconciler.ops import admin

log = logging.getLogger(__name__)

PATH = "/inject"


def pem_context(key: bytes, chain: bytes) -> ssl.SSLContext:
    """A server context for a key and chain in memory (the CA's). The ssl module loads a key only from a file: it
    is written to a private temporary directory (under TMPDIR, writable on a read-only root) and removed at once."""
    with tempfile.TemporaryDirectory(prefix="meshward-webhook-") as directory:
        key_file, chain_file = Path(directory) / "tls.key", Path(directory) / "tls.crt"
        private_files.create(key_file, key)
        chain_file.write_bytes(chain)
        return file_context(chain_file, key_file)


def file_context(chain: Path, key: Path) -> ssl.SSLContext:
    """A server context for PEM files; ssl.SSLError or OSError when they are not a matching key and chain."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain, key)
    return context


class InjectServer:
    def __init__(self, options: sidecar.Options, *, host: str, port: int,
                 context: Callable[[], ssl.SSLContext]) -> None:
        self._options = options
        self._host, self._port = host, port
        self._context = context
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> int:
        self._server = await admin.start_http(self._dispatch, self._host, self._port, ssl=self._context())
        log.info("injection webhook on https://%s:%d%s", self._host, self.port, PATH)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _dispatch(self, request: admin.Request) -> admin.Response:
        if request.path != PATH:
            return admin.Response.text(404, f"no such endpoint: {request.path}")
        if request.method != "POST":
            return admin.Response.text(405, f"{PATH} accepts POST")
        try:
            return admin.Response.json(200, admission.review(request.body, self._options))
        except admission.BadReview as err:
            return admin.Response.text(400, str(err))
        except Exception:  # a bug answers 500 and is logged; the server keeps going (as the admin server does)
            log.exception("injection webhook failed")
            return admin.Response.text(500, "internal error")
