"""Telemetry access-logging inheritance (compiler.translate.telemetry.merge), case by case against Pilot's mergeLogs
(pilot/pkg/model/telemetry.go): the most specific level naming providers for a side decides which log."""

from __future__ import annotations

from typing import Any

from compiler.api.telemetry import AccessLogging
from compiler.translate.telemetry import merge


def _entry(*providers: str, mode: str | None = None, disabled: bool | None = None) -> AccessLogging:
    body: dict[str, Any] = {"providers": [{"name": p} for p in providers]} if providers else {}
    if mode is not None:
        body["match"] = {"mode": mode}
    if disabled is not None:
        body["disabled"] = disabled
    return AccessLogging.model_validate(body)


def test_no_telemetry_gives_the_default_providers() -> None:
    assert merge([], ["envoy"], "CLIENT") == {"envoy": False}


def test_a_namespace_replaces_the_mesh_provider() -> None:
    levels = [[_entry("envoy")], [_entry("custom")]]
    assert merge(levels, [], "CLIENT") == {"custom": False}
    assert merge(levels, [], "SERVER") == {"custom": False}


def test_a_mode_match_overrides_one_side_only() -> None:
    levels = [[_entry("envoy")], [_entry("custom", mode="SERVER")]]
    assert merge(levels, [], "SERVER") == {"custom": False}
    assert merge(levels, [], "CLIENT") == {"envoy": False}


def test_disabled_without_providers_disables_the_inherited_ones() -> None:
    levels = [[_entry("envoy")], [_entry(disabled=True)]]
    assert merge(levels, [], "CLIENT") == {"envoy": True}


def test_disabled_without_providers_at_the_top_disables_the_defaults() -> None:
    assert merge([[_entry(disabled=True)]], ["envoy"], "SERVER") == {"envoy": True}


def test_a_workload_disables_one_side_of_its_namespace_provider() -> None:
    levels = [[_entry("custom")], [_entry("custom", mode="CLIENT", disabled=True)]]
    assert merge(levels, [], "CLIENT") == {"custom": True}
    assert merge(levels, [], "SERVER") == {"custom": False}
