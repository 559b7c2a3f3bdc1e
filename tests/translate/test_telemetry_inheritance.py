"""Telemetry access-logging inheritance (compiler.translate.telemetry merge and filters), case by case against
Pilot's mergeLogs (pilot/pkg/model/telemetry.go): the most specific level naming providers for a side decides which
log, and the last entry for the side naming a provider gives its filter."""

from __future__ import annotations

from typing import Any

from compiler.api.telemetry import AccessLogging
from compiler.translate.telemetry import filters, merge


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


def _filtered(expression: str, *providers: str, mode: str | None = None) -> AccessLogging:
    entry = _entry(*providers, mode=mode)
    return entry.model_copy(update={"filter": AccessLogging.model_validate(
        {"filter": {"expression": expression}}).filter})


def test_a_provider_takes_the_filter_of_the_last_entry_naming_it_for_the_side() -> None:
    levels = [[_filtered("response.code >= 400", "envoy")], [_filtered("response.code >= 500", "envoy", mode="SERVER")]]
    assert filters(levels, "SERVER") == {"envoy": "response.code >= 500"}
    assert filters(levels, "CLIENT") == {"envoy": "response.code >= 400"}


def test_an_entry_inheriting_its_providers_sets_no_filter() -> None:
    levels = [[_filtered("response.code >= 400", "envoy")], [_filtered("request.method == 'POST'")]]
    assert merge(levels, [], "CLIENT") == {"envoy": False}
    assert filters(levels, "CLIENT") == {"envoy": "response.code >= 400"}


def test_naming_the_provider_again_without_a_filter_drops_it() -> None:
    levels = [[_filtered("response.code >= 400", "envoy")], [_entry("envoy")]]
    assert filters(levels, "CLIENT") == {"envoy": ""}
