"""Snapshots as a whole: deterministic bytes, consistency checks, config-dump JSON, speed."""

from __future__ import annotations

import dataclasses
import json

import emit_factories as f
import pytest

from compiler import emit
from compiler import model as m
from compiler.emit import common, consistency, dump
from meshxds import consistency as xds_consistency
from meshxds import type_urls


@pytest.mark.parametrize("case", sorted(f.CASES))
def test_equal_models_give_byte_identical_snapshots(case: str) -> None:
    a, b = emit.snapshot(f.CASES[case]()), emit.snapshot(f.CASES[case]())
    assert a.version == b.version
    for t in type_urls.ORDER:
        assert {n: r.serialized for n, r in a.get(t).items()} == {
            n: r.serialized for n, r in b.get(t).items()
        }
    assert dump.dumps(a) == dump.dumps(b)


@pytest.mark.parametrize("case", sorted(f.CASES))
def test_the_emitter_without_reuse_equals_it_with_a_memo(case: str) -> None:
    """emit is a function of the model: the cold path (hooks.NO_REUSE) and a memo that served another proxy first
    give the same bytes."""
    memo = emit.EmitMemo()
    emit.snapshot(f.basic(), memo)
    cold, warm = emit.snapshot(f.CASES[case]()), emit.snapshot(f.CASES[case](), memo)
    assert cold.versions == warm.versions
    for t in type_urls.ORDER:
        assert {n: r.serialized for n, r in cold.get(t).items()} == {n: r.serialized for n, r in warm.get(t).items()}


@pytest.mark.parametrize("case", sorted(f.CASES))
def test_every_case_is_consistent(case: str) -> None:
    cfg = f.CASES[case]()
    assert xds_consistency.check(emit.snapshot(cfg)) == []
    assert consistency.duplicates(cfg) == []


def test_a_change_changes_only_that_types_version() -> None:
    cfg = f.basic()
    changed = dataclasses.replace(
        cfg, load_assignments=(m.LoadAssignment(f.CLUSTER, (m.Endpoint("10.9.9.9", 9080),)),)
    )
    a, b = emit.snapshot(cfg), emit.snapshot(changed)
    assert a.versions[type_urls.ENDPOINT] != b.versions[type_urls.ENDPOINT]
    assert {t: a.versions[t] for t in type_urls.ORDER if t != type_urls.ENDPOINT} == {
        t: b.versions[t] for t in type_urls.ORDER if t != type_urls.ENDPOINT
    }


def test_missing_route_config_load_assignment_and_secrets_are_reported() -> None:
    broken = dataclasses.replace(f.gateway(), route_configs=(), load_assignments=(), secrets=())
    problems = xds_consistency.check(emit.snapshot(broken))
    assert (
        "listener 0.0.0.0_8080 references route config 'http.8080', which is not in the snapshot" in problems
    )
    assert any("'https.443.https.gw.istio-system'" in p for p in problems)
    assert f"EDS cluster {f.CLUSTER} has no load assignment {f.CLUSTER!r} in the snapshot" in problems
    assert any("chain 'mutual' references secret 'gw-cert-cacert'" in p for p in problems)



def test_the_agents_secrets_are_exempt_and_only_they() -> None:
    """`default` and `ROOTCA` come from the agent over `sds-grpc`: the snapshot needs not hold them; the same names
    taken over ADS it must."""
    tls = dataclasses.replace(f.upstream_tls(), secrets=())
    assert xds_consistency.check(emit.snapshot(tls)) == []
    over_ads = dataclasses.replace(tls, clusters=tuple(
        dataclasses.replace(c, tls=dataclasses.replace(c.tls, secrets_from=m.SecretSource.CONTROL_PLANE))
        if c.tls is not None else c for c in tls.clusters))
    assert (
        "cluster outbound|1||mtls references secret 'ROOTCA', which is not in the snapshot"
        in xds_consistency.check(emit.snapshot(over_ads))
    )


def test_duplicate_names_are_reported() -> None:
    cfg = f.basic()
    dup = dataclasses.replace(cfg, clusters=cfg.clusters * 2)
    assert consistency.duplicates(dup) == [f"cluster {f.CLUSTER!r} is defined 2 times"]
    with pytest.raises(emit.EmitError, match="is defined 2 times"):
        emit.snapshot(dup)


def test_config_dump_groups_by_type_url_with_proto_names_and_sorted_keys() -> None:
    text = dump.dumps(emit.snapshot(f.basic()))
    data = json.loads(text)
    assert list(data) == sorted(data) and set(data) == {
        type_urls.CLUSTER,
        type_urls.ENDPOINT,
        type_urls.LISTENER,
        type_urls.ROUTE,
    }
    assert data[type_urls.CLUSTER][0]["connect_timeout"] == "10s"  # proto field names, not lowerCamel
    meta = data[type_urls.ROUTE][0]["virtual_hosts"][0]["routes"][0]["metadata"]["filter_metadata"][
        "meshward"
    ]
    assert meta["line"] == 14 and isinstance(meta["line"], int)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_emit_errors_name_the_object() -> None:
    with pytest.raises(common.EmitError, match="'both'"):
        emit.snapshot(dataclasses.replace(f.basic(), secrets=(m.Secret("both", "c", "k", "ca"),)))
    bad = m.Route("r", m.RouteMatch(), m.Redirect(response_code=300))
    with pytest.raises(common.EmitError, match="300"):
        emit.snapshot(f.http_proxy(bad))


def _big(n: int) -> m.ProxyConfig:
    hosts = [f"svc{i}.ns{i % 50}.svc.cluster.local" for i in range(n)]
    clusters = tuple(f.eds_cluster(f"outbound|80||{h}", sources=(f.SRC,)) for h in hosts)
    las = tuple(
        m.LoadAssignment(
            c.name,
            (
                m.Endpoint(f"10.{i // 250 % 250}.{i % 250}.1", 80),
                m.Endpoint(f"10.{i // 250 % 250}.{i % 250}.2", 80),
            ),
        )
        for i, c in enumerate(clusters)
    )
    vhs = tuple(
        m.VirtualHost(
            f"{h}:80",
            h,
            80,
            (h,),
            (m.Route("default", m.RouteMatch(), f.forward(c.name, timeout_ms=0), source=f.SRC),),
        )
        for h, c in zip(hosts, clusters)
    )
    return m.ProxyConfig(
        f.PROXY,
        listeners=(f.http_listener("80", 80),),
        route_configs=(m.RouteConfig("80", ignore_port=True, virtual_hosts=vhs),),
        clusters=clusters,
        load_assignments=las,
    )


def test_ten_thousand_services_emit_a_cluster_and_endpoints_each() -> None:
    """How fast is bench/compile.py's to say (`sidecar`): a timed assertion here failed on loaded machines."""
    snap = emit.snapshot(_big(10_000))
    assert len(snap.get(type_urls.CLUSTER)) == 10_000 and len(snap.get(type_urls.ENDPOINT)) == 10_000


def test_config_dump_accepts_a_proxy_config() -> None:
    assert dump.dumps(f.basic()) == dump.dumps(emit.snapshot(f.basic()))


@pytest.mark.parametrize("case", sorted(f.CASES))
def test_config_dump_by_type_put_back_together_is_the_config_dump(case: str) -> None:
    """The golden files per type (tests/golden) lose nothing of the dump `meshward compile` prints."""
    snap = emit.snapshot(f.CASES[case]())
    url = {short: t for t, short in type_urls.SHORT_NAMES.items()}
    parts = {url[short]: json.loads(text) for short, text in dump.dumps_by_type(snap).items()}
    assert dump.to_json(parts) == dump.dumps(snap)


def test_per_route_filter_config_without_the_filter_in_the_chain_is_reported() -> None:
    cfg = f.fault_and_cors()
    chain = cfg.listeners[0].filter_chains[0]
    no_filters = dataclasses.replace(
        chain, filter=dataclasses.replace(chain.filter, faults=False, cors=False)
    )
    broken = dataclasses.replace(
        cfg, listeners=(dataclasses.replace(cfg.listeners[0], filter_chains=(no_filters,)),)
    )
    assert xds_consistency.check(emit.snapshot(broken)) == [
        "route config '9080' configures envoy.filters.http.cors per route, but listener 0.0.0.0_9080 does not run it",
        "route config '9080' configures envoy.filters.http.fault per route, but listener 0.0.0.0_9080 does not run it",
    ]


def test_static_bootstrap_is_self_contained() -> None:
    from compiler.emit import bootstrap_static

    doc = bootstrap_static.static_bootstrap(f.gateway(), admin_port=15000)
    assert doc["node"] == {"id": f.GW.node_id, "cluster": "ingress-1.istio-system"}
    assert doc["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 15000}
    static = doc["static_resources"]
    assert sorted(s["name"] for s in static["secrets"]) == ["gw-cert", "gw-cert-cacert"]
    assert {c["type"] for c in static["clusters"]} == {"STATIC"}
    text = json.dumps(doc)
    assert '"rds"' not in text and '"ads"' not in text and "eds_cluster_config" not in text


def test_to_json_writes_what_the_standard_library_writes() -> None:
    doc = {"b": [1, 2.5, True, None, {}, []], "a": {"é\u2028\x00\"": "\U0001F600\t"}, "c": -0.0, "d": 1e16}
    assert dump.to_json(doc) == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_whole_floats_become_ints_only_where_a_double_is_exact() -> None:
    from google.protobuf import struct_pb2

    value = struct_pb2.Struct()
    value.update({"small": 3.0, "edge": 2.0**53 - 1, "huge": 1e300})
    as_dict = dump.message_dict(value)
    assert as_dict == {"small": 3, "edge": 2**53 - 1, "huge": 1e300}
    assert isinstance(as_dict["huge"], float)
    assert '"huge": 1e+300' in dump.to_json(as_dict)  # a 1000-bit int would stop orjson
