"""Policy shared by the sidecar traffic tests: a client workload's sidecar with one egress listener (no traffic
capture: the listener binds an address of the test's own) and, for the smallest mesh, `web` of namespace `shop`
routed to one backend through a VirtualService route named `to-web`, which the access-log tests find in their
lines."""

from __future__ import annotations

from traffic_backends import Backend


def client_to_web(client_address: str, port: int, web: Backend) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: shop}}
spec:
  address: {client_address}
  labels: {{app: client}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: shop}}
spec:
  egress:
  - port: {{number: {port}, protocol: HTTP, name: http}}
    bind: {client_address}
    captureMode: NONE
    hosts: ["./*"]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{app: web}}
  ports:
  - {{name: http, port: {port}, targetPort: http}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web, namespace: shop}}
spec:
  address: {web.address}
  labels: {{app: web}}
  ports: {{http: {web.port}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: shop}}
spec:
  hosts: [web]
  http:
  - name: to-web
    route:
    - destination: {{host: web}}
"""


def client_egress(namespace: str, port: int) -> str:
    """The Sidecar of the `app: client` workload of `namespace`: one HTTP egress listener on 127.0.0.1:`port`, no
    traffic capture, every host of its namespace."""
    return f"""apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: client, namespace: {namespace}}}
spec:
  workloadSelector: {{labels: {{app: client}}}}
  egress:
  - port: {{number: {port}, protocol: HTTP, name: egress-http}}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./*"]
---
"""
