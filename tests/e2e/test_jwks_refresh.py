"""`meshward serve` and a jwksUri end to end: the key set is fetched before the commit is compiled and inlined in the
proxy's config; when the key server starts serving another key set, the next refresh compiles the serving commit
again and the proxy's config holds the new keys, with no new commit."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import jwks_server
import loop_thread
from jwks_server import Route
from test_status_cli import eventually, git

from reconciler import jwks, serve

NODE = "sidecar~10.1.0.1~web.app~app.svc.cluster.local"
OLD = '{"keys":[{"kty":"oct","k":"b2xk","kid":"old-key"}]}'
NEW = '{"keys":[{"kty":"oct","k":"bmV3","kid":"new-key"}]}'


def _tree(uri: str) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: web, namespace: app}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web, namespace: app}}
spec:
  address: 10.1.0.1
  labels: {{app: web}}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: app}}
spec:
  jwtRules: [{{issuer: "https://issuer.example.com", jwksUri: "{uri}"}}]
"""


def test_a_refreshed_key_set_reaches_the_proxy_without_a_commit(tmp_path: Path) -> None:
    with jwks_server.serving(routes={"/jwks.json": Route(OLD.encode())}) as keys:
        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "mesh.yaml").write_text(_tree(keys.url("/jwks.json")))
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "mesh")
        config = serve.ServeConfig(repo=str(repo), poll_interval=3600, xds_address="127.0.0.1:0",
                                   admin_address="127.0.0.1:0",
                                   jwks=jwks.FetchOptions(refresh_interval=0.3, retry_interval=0.3))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        server = serve.Server(config, tmp_path / "serve")
        try:
            asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=30)
            asyncio.run_coroutine_threadsafe(server.run(), loop)
            url = f"http://127.0.0.1:{server.admin.port}/debug/config?node={urllib.parse.quote(NODE)}"

            def served() -> str:
                try:
                    with urllib.request.urlopen(url, timeout=5) as resp:
                        return json.dumps(json.loads(resp.read()))
                except OSError:
                    return ""

            eventually(lambda: "old-key" in served(), "the fetched key set in the proxy's config")
            commits = server.loop.status.serving
            keys.routes["/jwks.json"] = dataclasses.replace(keys.routes["/jwks.json"], body=NEW.encode())
            eventually(lambda: "new-key" in served(), "the refreshed key set in the proxy's config")
            assert "old-key" not in served() and server.loop.status.serving == commits
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=30)
            loop_thread.close(loop, thread)
