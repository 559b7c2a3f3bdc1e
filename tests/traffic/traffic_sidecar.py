"""The policy of the sidecar traffic tests' smallest mesh: a client workload whose sidecar listens on one egress port
(no traffic capture: its listener binds the client's own address) and routes `web` of namespace `shop` to one
backend, through a VirtualService route named `to-web`, which the access-log tests find in their lines."""

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
