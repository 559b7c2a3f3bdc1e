"""Property: random mutations of valid resources (fields dropped, added, retyped, random scalars) never make
typed.to_resources or validate.validate raise; every outcome is resources and/or diagnostics."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import typed, validate
from compiler.load import Document

SEEDS: list[dict[str, Any]] = [
    {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "r", "namespace": "a"},
     "spec": {"hosts": ["r"], "gateways": ["mesh"], "http": [{
         "match": [{"uri": {"prefix": "/a"}, "headers": {"x": {"regex": "b+"}}}],
         "route": [{"destination": {"host": "r", "subset": "v1", "port": {"number": 80}}, "weight": 50},
                   {"destination": {"host": "s"}, "weight": 50}],
         "retries": {"attempts": 2, "retryOn": "5xx"}, "timeout": "1s",
         "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 5}}}}],
         "tcp": [{"match": [{"port": 1}], "route": [{"destination": {"host": "t"}}]}]}},
    {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "d"},
     "spec": {"host": "r", "trafficPolicy": {"tls": {"mode": "MUTUAL", "credentialName": "c"},
                                             "connectionPool": {"tcp": {"maxConnections": 1}},
                                             "portLevelSettings": [{"port": {"number": 80}}]},
              "subsets": [{"name": "v1", "labels": {"v": "1"}}]}},
    {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "g"},
     "spec": {"selector": {"istio": "ingress"}, "servers": [{"port": {"number": 443, "name": "h", "protocol": "HTTPS"},
                                                            "hosts": ["*/a.com"], "tls": {"mode": "SIMPLE",
                                                                                          "credentialName": "c"}}]}},
    {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "e"},
     "spec": {"hosts": ["a.com"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
              "resolution": "STATIC", "endpoints": [{"address": "1.1.1.1", "ports": {"http": 8080}}]}},
    {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "s"},
     "spec": {"ingress": [{"port": {"number": 80, "protocol": "HTTP", "name": "h"}, "defaultEndpoint":
                           "127.0.0.1:8080"}], "egress": [{"hosts": ["./*"]}]}},
    {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "p"},
     "spec": {"rules": [{"from": [{"source": {"principals": ["a"]}}], "to": [{"operation": {"ports": ["80"]}}],
                         "when": [{"key": "request.headers[k]", "values": ["v"]}]}]}},
    {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication", "metadata": {"name": "q"},
     "spec": {"jwtRules": [{"issuer": "i", "jwksUri": "https://a/b", "timeout": "1s"}]}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
     "spec": {"ports": [{"port": 80, "targetPort": "http", "name": "http"}], "selector": {"app": "a"}}},
    {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "es"},
     "addressType": "IPv4", "endpoints": [{"addresses": ["1.1.1.1"], "conditions": {"ready": True}}],
     "ports": [{"port": 80}]},
]

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True), st.text(max_size=12),
                    st.sampled_from(["*", "", "1ms", "0s", "(a)\\1", "a.*.b", "::1", "10.0.0.0/33", "MUTUAL",
                                     "unix:///x/", "x-y", ":path", "5xx,bogus"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


def _containers(node: Any, out: list[Any]) -> list[Any]:
    if isinstance(node, (dict, list)):
        out.append(node)
        for child in (node.values() if isinstance(node, dict) else node):
            _containers(child, out)
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        targets = _containers(data, [])
        target = draw(st.sampled_from(targets))
        if isinstance(target, dict):
            keys = list(target)
            action = draw(st.sampled_from(["drop", "set", "add"]))
            if action == "add" or not keys:
                target[draw(st.text(max_size=10))] = draw(VALUES)
            elif action == "drop":
                del target[draw(st.sampled_from(keys))]
            else:
                target[draw(st.sampled_from(keys))] = draw(VALUES)
        elif target:
            target[draw(st.integers(min_value=0, max_value=len(target) - 1))] = draw(VALUES)
        else:
            target.append(draw(VALUES))
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_never_raise(data: Any) -> None:
    doc = Document("fuzz.yaml", 0, 1, data, "", 1)
    resources, problems = typed.to_resources([doc])
    problems += validate.validate(resources)
    assert not [p for p in problems if p.code == "MW0404"], [p.render() for p in problems]
    assert resources or problems


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_arbitrary_documents_never_raise(data: Any) -> None:
    resources, problems = typed.to_resources([Document("fuzz.yaml", 0, 1, data, "", 1)])
    validate.validate(resources)
    assert not [p for p in problems if p.code == "MW0404"]


def test_seeds_are_valid() -> None:
    for seed in SEEDS:
        resources, problems = typed.to_resources([Document("seed.yaml", 0, 1, seed, "", 1)])
        problems += validate.validate(resources)
        assert resources and problems == [], [p.render() for p in problems]
