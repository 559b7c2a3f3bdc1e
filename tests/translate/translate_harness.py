"""Shared helpers for translate tests: inline YAML -> typed resources -> mesh index -> proxy config."""

from __future__ import annotations

from compiler import diagnostics, load, model, translate, typed
from compiler.inputs import BuildInputs
from compiler.resources import ResourceSet


def build_mesh(text: str, *, mesh_identity: bool = False) -> translate.Mesh:
    loaded = load.load_text(text)
    resources, problems = typed.to_resources(loaded.documents)
    errors = [p.render() for p in [*loaded.diagnostics, *problems] if p.severity is diagnostics.Severity.ERROR]
    assert not errors, errors
    return translate.index(ResourceSet(resources), inputs=BuildInputs(mesh_identity=mesh_identity))


def config_for(text: str, node_id: str, *, mesh_identity: bool = False) -> model.ProxyConfig:
    mesh = build_mesh(text, mesh_identity=mesh_identity)
    return translate.proxy_config(mesh, translate.find_proxy(mesh, node_id))


def by_name(items: tuple, name: str):  # type: ignore[no-untyped-def, type-arg]
    found = [i for i in items if getattr(i, "name", getattr(i, "cluster_name", None)) == name]
    assert found, f"{name!r} not in {[getattr(i, 'name', getattr(i, 'cluster_name', None)) for i in items]}"
    return found[0]


SHOP = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: shop}
spec: {address: 10.0.0.1, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: shop}
spec: {address: 10.0.0.2, labels: {app: reviews, version: v2}}
---
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: shop}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080, targetPort: 9081}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: productpage, namespace: shop}
spec: {address: 10.0.0.9, labels: {app: productpage}}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec:
  selector: {app: db}
  ports: [{name: tcp-db, port: 5432}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: db-0, namespace: data}
spec: {address: 10.0.1.1, labels: {app: db}}
"""

PRODUCTPAGE = "sidecar~10.0.0.9~productpage.shop~shop.svc.cluster.local"
REVIEWS = "outbound|9080||reviews.shop.svc.cluster.local"
