"""Subset endpoints from EndpointSlices: a slice's own labels (plus the Service selector) are its endpoints'."""

from __future__ import annotations

from compiler import load, typed
from compiler.analyze import analyze
from compiler.resources import ResourceSet

TREE = """\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: reviews-v1
  namespace: shop
  labels: {kubernetes.io/service-name: reviews, version: v1}
addressType: IPv4
ports:
- {name: http, port: 9080}
endpoints:
- addresses: [10.0.0.1]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1, app: reviews}
  - name: v2
    labels: {version: v2}
"""


def test_slice_labels_select_subsets() -> None:
    loaded = load.load_text(TREE, "tree.yaml")
    resources, problems = typed.to_resources(loaded.documents)
    assert not problems, [p.render() for p in problems]
    found = [(d.code, d.position.line) for d in analyze(ResourceSet(resources)) if d.code == "MW0317"]
    assert found == [("MW0317", 30)]  # only subset v2; v1 matches the slice labels plus the Service selector
