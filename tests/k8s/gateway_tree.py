"""A small policy tree for the cluster tests: an ingress gateway terminating HTTPS with `credentialName`, routing
`shop.example.com` to the Service `web.shop`, whose endpoints the tests put in the repository or in the cluster.
Ports are parameters, so every test picks free ones at run time; the git helpers make it a repository to serve."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

GATEWAY_NODE = "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
HOST = "shop.example.com"
CREDENTIAL = "shop-cert"

POLICY = """\
apiVersion: v1
kind: Namespace
metadata: {{name: istio-system}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: v1
kind: Service
metadata: {{name: istio-ingressgateway, namespace: istio-system, labels: {{istio: ingressgateway}}}}
spec:
  selector: {{istio: ingressgateway}}
  ports: [{{name: https, port: 443, targetPort: {gateway_port}}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: istio-ingressgateway, namespace: istio-system}}
spec:
  address: 127.0.0.1
  labels: {{istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: shop-gateway, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {gateway_port}, name: https, protocol: HTTPS}}
    bind: 127.0.0.1
    hosts: [{host}]
    tls: {{mode: SIMPLE, credentialName: {credential}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: shop}}
spec:
  hosts: [{host}]
  gateways: [istio-system/shop-gateway]
  http:
  - route:
    - destination: {{host: web.shop.svc.cluster.local, port: {{number: 8080}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop, labels: {{app: web}}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 8080, targetPort: 8080}}]
"""


def web_slice(name: str, port: int, address: str = "127.0.0.1") -> dict[str, Any]:
    """An EndpointSlice of `web.shop` with one ready endpoint at address:port."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name, "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}


def web_service() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}}


def slice_yaml(name: str, port: int) -> str:
    return (f"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\n"
            f"metadata: {{name: {name}, namespace: shop, labels: {{kubernetes.io/service-name: web}}}}\n"
            f"endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]\n"
            f"ports: [{{name: http, port: {port}, protocol: TCP}}]\n")


def write_tree(root: Path, *, gateway_port: int, repo_backend_port: int | None = None) -> Path:
    """The policy in `root/policy.yaml`; with `repo_backend_port`, the repository also has an EndpointSlice."""
    root.mkdir(parents=True, exist_ok=True)
    text = POLICY.format(gateway_port=gateway_port, host=HOST, credential=CREDENTIAL)
    if repo_backend_port is not None:
        text += "---\n" + slice_yaml("web-from-repo", repo_backend_port)
    (root / "policy.yaml").write_text(text)
    return root


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd),
           "PATH": "/usr/bin:/bin:/usr/local/bin"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def make_repo(work: Path) -> str:
    """`work` (already holding the tree) as a git repository on branch main; returns the commit sha."""
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "policy")
    return git(work, "rev-parse", "HEAD")


def commit_all(work: Path, message: str) -> str:
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    return git(work, "rev-parse", "HEAD")
