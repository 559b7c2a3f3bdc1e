"""Shared helpers for translate tests: inline YAML -> typed resources -> mesh index -> proxy config."""

from __future__ import annotations

from compiler import diagnostics, load, model, translate, typed
from compiler.resources import ResourceSet


def build_mesh(text: str) -> translate.Mesh:
    loaded = load.load_text(text)
    resources, problems = typed.to_resources(loaded.documents)
    errors = [p.render() for p in [*loaded.diagnostics, *problems] if p.severity is diagnostics.Severity.ERROR]
    assert not errors, errors
    return translate.index(ResourceSet(resources))


def config_for(text: str, node_id: str) -> model.ProxyConfig:
    mesh = build_mesh(text)
    return translate.proxy_config(mesh, translate.find_proxy(mesh, node_id))


def by_name(items: tuple, name: str):  # type: ignore[no-untyped-def, type-arg]
    found = [i for i in items if getattr(i, "name", getattr(i, "cluster_name", None)) == name]
    assert found, f"{name!r} not in {[getattr(i, 'name', getattr(i, 'cluster_name', None)) for i in items]}"
    return found[0]
