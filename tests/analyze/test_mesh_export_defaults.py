"""Analyzer findings that depend on visibility read MeshConfig's default exportTo, as Pilot does when it serves the
configs: a host the default hides is not found, VirtualServices or ServiceEntries the default keeps apart do not
conflict. Also incrementally: a commit that changes only the ConfigMap changes the findings."""

from __future__ import annotations

import pytest

from compiler import load, typed
from compiler.analyze import analyze
from compiler.analyze.cache import AnalyzeCache
from compiler.resources import Resource, ResourceSet

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
"""


def mesh(line: str) -> str:
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\n"
            f"data:\n  mesh: |\n    {line}\n---\n")


def vs(ns: str, host: str = "reviews.shop.svc.cluster.local", name: str = "r") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  hosts: [{host}]\n  http:\n  - route: [{{destination: {{host: reviews.shop.svc.cluster.local}}}}]\n"
            "---\n")


def se(ns: str, protocol: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: api, namespace: {ns}}}\n"
            f"spec:\n  hosts: [api.example.com]\n  addresses: [240.0.0.1]\n  ports: [{{number: 443, name: p, "
            f"protocol: {protocol}}}]\n  resolution: DNS\n---\n")


def documents(text: str) -> list[Resource]:
    loaded = load.load_text(text, "case.yaml")
    found, problems = typed.to_resources(loaded.documents)
    assert not loaded.diagnostics and not problems
    return found


def codes(text: str) -> list[str]:
    return sorted(d.code for d in analyze(ResourceSet(documents(text))))


@pytest.mark.parametrize(("default", "found"), [("", False), ("defaultServiceExportTo: ['.']", True),
                                                ("defaultServiceExportTo: [front]", False),
                                                ("defaultServiceExportTo: [other]", True)])
def test_a_destination_hidden_by_the_default_service_export_to_is_not_found(default: str, found: bool) -> None:
    text = SERVICE + (mesh(default) if default else "") + vs("front", "reviews.front.example")
    assert ("MW0302" in codes(text)) is found


@pytest.mark.parametrize(("default", "conflict"), [("", True), ("defaultVirtualServiceExportTo: ['.']", False),
                                                   ("defaultVirtualServiceExportTo: ['*']", True)])
def test_virtual_services_kept_apart_by_the_default_do_not_conflict(default: str, conflict: bool) -> None:
    text = SERVICE + (mesh(default) if default else "") + vs("shop") + vs("front")
    assert ("MW0305" in codes(text)) is conflict


@pytest.mark.parametrize(("default", "conflict"), [("", True), ("defaultServiceExportTo: ['.']", False)])
def test_service_entries_kept_apart_by_the_default_do_not_conflict(default: str, conflict: bool) -> None:
    text = SERVICE + (mesh(default) if default else "") + se("shop", "TLS") + se("front", "HTTPS")
    assert ("MW0319" in codes(text)) is conflict


def test_a_commit_that_changes_only_the_config_map_changes_the_findings() -> None:
    """The unchanged documents are the same objects from revision to revision (as the CheckCache hands them out),
    so the cache would serve the last findings if an analyzer did not declare that it reads the ConfigMap."""
    cache = AnalyzeCache()
    body = documents(SERVICE + vs("shop") + vs("front") + vs("front", "reviews.front.example", "r2")
                     + se("shop", "TLS") + se("front", "HTTPS"))

    def run(line: str) -> set[str]:
        return {d.code for d in analyze(ResourceSet([*documents(mesh(line)), *body]), cache)}

    assert run("rootNamespace: istio-system") >= {"MW0305", "MW0319"}
    found = run("defaultServiceExportTo: ['.']")
    assert "MW0302" in found and "MW0319" not in found and "MW0305" in found
    found = run("defaultVirtualServiceExportTo: ['.']")
    assert "MW0305" not in found and "MW0302" not in found and "MW0319" in found
