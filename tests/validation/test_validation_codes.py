"""One failing and one passing input for every code typed.py and validate own (MW00xx envelope, MW01xx structure,
MW02xx semantics): the failing input yields exactly that code at the expected line."""

from __future__ import annotations

import pytest

from compiler import diagnostics, load, typed, validate


def run(text: str) -> list[diagnostics.Diagnostic]:
    loaded = load.load_text(text, "t.yaml")
    assert loaded.diagnostics == []
    resources, problems = typed.to_resources(loaded.documents)
    return problems + validate.validate(resources)


def vs(body: str) -> str:
    return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\nspec:\n" + body


def dr(body: str) -> str:
    return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: r\nspec:\n" + body


def gw(tls: str, protocol: str = "HTTPS") -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: g\nspec:\n  servers:\n"
            f"  - port: {{number: 443, name: https, protocol: {protocol}}}\n    hosts: [a.example.com]\n" + tls)


def se(body: str) -> str:
    return "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: e\nspec:\n" + body


def sec(kind: str, body: str) -> str:
    return f"apiVersion: security.istio.io/v1\nkind: {kind}\nmetadata:\n  name: p\nspec:\n" + body


ROUTE = "  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n"
SIDECAR = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\nspec:\n  egress:\n"
MATCHED = "    route:\n    - destination: {host: r}\n"
SVC = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports: [{port: 80}]\n"

# (code, failing input, line of the diagnostic, passing input)
CASES: list[tuple[str, str, int, str]] = [
    ("MW0005", "apiVersion: v1\nkind: Secret\nmetadata: {name: d}\n", 2, SVC),
    ("MW0006", "- just\n- a list\n", 1, SVC),
    ("MW0007", "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: r}\nspec: {}\n", 1,
     vs(ROUTE)),
    ("MW0008", "apiVersion: v1\nkind: Service\nmetadata:\n  name: Bad_Name\n", 4, SVC),
    ("MW0011", SVC + "---\n" + SVC, 11, SVC),
    ("MW0012", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: NS!\n", 5, SVC),
    ("MW0101", vs("  hostz: [r]\n"), 6, vs(ROUTE)),
    ("MW0102", vs(ROUTE + "    timeout: 5\n"), 10, vs(ROUTE + "    timeout: 5s\n")),
    ("MW0102", SVC.replace("  name: s\n", "  name: s\n  creationTimestamp: yesterday\n"), 5,
     SVC.replace("  name: s\n", "  name: s\n  creationTimestamp: '2024-01-31T12:00:00Z'\n")),
    ("MW0103", vs("  hosts: [r]\n  http:\n  - route:\n    - destination: {subset: v1}\n"), 9, vs(ROUTE)),
    ("MW0201", vs(ROUTE.replace("hosts: [r]", "hosts: ['a.*.com']")), 6, vs(ROUTE)),
    ("MW0202", vs(ROUTE + "    timeout: 0.5ms\n"), 10, vs(ROUTE + "    timeout: 1ms\n")),
    ("MW0203", vs("  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r, port: {number: 0}}\n"), 9,
     vs("  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r, port: {number: 80}}\n")),
    ("MW0204", vs("  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n      weight: -1\n"), 10,
     vs("  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n      weight: 1\n")),
    ("MW0205", vs(ROUTE + "      weight: 30\n    - destination: {host: s}\n      weight: 30\n"), 8,
     vs(ROUTE + "      weight: 30\n    - destination: {host: s}\n      weight: 70\n")),
    ("MW0206", vs("  hosts: [r]\n  http:\n  - match:\n    - uri: {regex: '(a)\\1'}\n" + MATCHED), 9,
     vs("  hosts: [r]\n  http:\n  - match:\n    - uri: {regex: '/a+'}\n" + MATCHED)),
    ("MW0207", vs(ROUTE + "    retries: {attempts: 2, retryOn: 'gateway-error,bogus'}\n"), 10,
     vs(ROUTE + "    retries: {attempts: 2, retryOn: 'gateway-error,503'}\n")),
    ("MW0208", vs(ROUTE + "    fault:\n      abort: {httpStatus: 503, percentage: {value: 150}}\n"), 11,
     vs(ROUTE + "    fault:\n      abort: {httpStatus: 503, percentage: {value: 50}}\n")),
    ("MW0209", dr("  host: r\n  trafficPolicy:\n    tls: {mode: MUTUAL}\n"), 8,
     dr("  host: r\n  trafficPolicy:\n    tls: {mode: MUTUAL, credentialName: c}\n")),
    ("MW0209", gw("    tls: {mode: SIMPLE}\n"), 9, gw("    tls: {mode: SIMPLE, credentialName: c}\n")),
    ("MW0210", dr("  host: r\n  subsets:\n  - name: v1\n  - name: v1\n"), 9,
     dr("  host: r\n  subsets:\n  - name: v1\n  - name: v2\n")),
    ("MW0211", dr("  host: r\n  subsets:\n  - name: v1\n    labels: {'bad key!': x}\n"), 9,
     dr("  host: r\n  subsets:\n  - name: v1\n    labels: {version: v1}\n")),
    ("MW0212", vs("  hosts: [r]\n  http:\n  - match:\n    - uri: {exact: /a, prefix: /b}\n" + MATCHED), 9,
     vs("  hosts: [r]\n  http:\n  - match:\n    - uri: {prefix: /b}\n" + MATCHED)),
    ("MW0213", gw("", protocol="BOGUS"), 7, gw("", protocol="HTTP")),
    ("MW0214", se("  hosts: [a.example.com]\n  resolution: NONE\n  endpoints: [{address: 1.1.1.1}]\n"), 8,
     se("  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints: [{address: 1.1.1.1}]\n")),
    ("MW0215", vs(ROUTE + "    headers:\n      request:\n        set: {':path': /x}\n"), 12,
     vs(ROUTE + "    headers:\n      request:\n        set: {x-a: /x}\n")),
    ("MW0216", vs(ROUTE + "    redirect: {uri: /x}\n"), 10, vs(ROUTE)),
    ("MW0217", dr("  host: r\n  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: -1}\n"), 9,
     dr("  host: r\n  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 1}\n")),
    ("MW0218", se("  hosts: [a.example.com]\n  addresses: [10.0.0.300]\n"), 7,
     se("  hosts: [a.example.com]\n  addresses: [10.0.0.3]\n")),
    ("MW0219", sec("AuthorizationPolicy", "  action: DENY\n  provider: {name: ext}\n"), 7,
     sec("AuthorizationPolicy", "  action: DENY\n")),
    ("MW0220", sec("PeerAuthentication", "  portLevelMtls:\n    8080: {mode: DISABLE}\n"), 6,
     sec("PeerAuthentication", "  selector: {matchLabels: {app: a}}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n")),
    ("MW0221", SIDECAR + "  - hosts: [foo.com]\n", 6, SIDECAR + "  - hosts: [./foo.com]\n"),
    ("MW0222", vs(ROUTE + "    retries: {attempts: -1}\n"), 10, vs(ROUTE + "    retries: {attempts: 1}\n")),
    ("MW0223", vs(ROUTE + "  exportTo: ['.', '.']\n"), 10, vs(ROUTE + "  exportTo: ['.']\n")),
    ("MW0224", vs(ROUTE + "    headers:\n      response:\n        set: {x-a: '100%'}\n"), 12,
     vs(ROUTE + "    headers:\n      response:\n        set: {x-a: '100%%'}\n")),
    ("MW0225", vs("  hosts: [r]\n  http:\n  - match:\n    - uri: {regex: '(ab|cd){40}'}\n" + MATCHED), 9,
     vs("  hosts: [r]\n  http:\n  - match:\n    - uri: {regex: '(ab|cd){4}'}\n" + MATCHED)),
    ("MW0226", sec("AuthorizationPolicy", "  action: CUSTOM\n  provider: {name: ext}\n").replace(
        "  name: p\n", "  name: p\n  annotations: {istio.io/dry-run: 'true'}\n"), 7,
     sec("AuthorizationPolicy", "  action: CUSTOM\n  provider: {name: ext}\n")),
]


@pytest.mark.parametrize(("code", "bad", "line", "good"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_code(code: str, bad: str, line: int, good: str) -> None:
    found = run(bad)
    assert [(d.code, d.position.line) for d in found] == [(code, line)], [d.render() for d in found]
    assert run(good) == []


def test_every_owned_code_has_a_case() -> None:
    owned = {f"MW0{n:03d}" for n in (5, 6, 7, 8, 11, 12, 101, 102, 103, *range(201, 227))}
    assert owned <= {case[0] for case in CASES}


def test_unknown_field_suggests_the_closest_name() -> None:
    (found,) = run(vs("  hostz: [r]\n"))
    assert 'unknown field "hostz"; did you mean "hosts"?' in found.message
    assert found.path == "spec.hostz"


def test_wrong_type_names_the_camel_case_path() -> None:
    (found,) = run(vs("  hosts: [r]\n  http:\n  - route:\n    - destination: {host: 7}\n"))
    assert found.path == "spec.http[0].route[0].destination.host"


def test_list_items_become_resources_at_their_own_lines() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- " + SVC.replace("\n", "\n  ").rstrip() + "\n- " + \
        SVC.replace("name: s", "name: t").replace("port: 80", "port: 0").replace("\n", "\n  ").rstrip() + "\n"
    loaded = load.load_text(text, "t.yaml")
    resources, problems = typed.to_resources(loaded.documents)
    assert [r.name for r in resources] == ["s"]
    assert [(p.code, p.position.line) for p in problems] == [("MW0102", 15)]
