"""Each class of policy that Istio's rules accept and Envoy refuses (issue 13's list, found by the mutation fuzz in
tests/reliability): validation now rejects it at the field's line with a stable code, and accepts the value next to
it. tests/reliability/test_envoy_limits.py proves each limit on both sides with real Envoy."""

from __future__ import annotations

import pytest
from test_validation_codes import MATCHED, ROUTE, SVC, dr, gw, run, vs

SIDECAR = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\nspec:\n"
HASH = "  host: r\n  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
POOL = "  host: r\n  trafficPolicy:\n    connectionPool:\n      tcp:\n"
TLS = "  host: r\n  trafficPolicy:\n    tls:\n"


def headers(side: str, op: str, entry: str) -> str:
    return vs(ROUTE + f"    headers:\n      {side}:\n        {op}: {{{entry}}}\n")


def uri_regex(pattern: str) -> str:
    return vs(f"  hosts: [r]\n  http:\n  - match:\n    - uri: {{regex: '{pattern}'}}\n" + MATCHED)


def header_match(match: str) -> str:
    return vs(f"  hosts: [r]\n  http:\n  - match:\n    - headers: {{x-a: {match}}}\n" + MATCHED)


def weights(*values: int) -> str:
    dests = "".join(f"    - destination: {{host: r, subset: v{i}}}\n      weight: {w}\n" for i, w in enumerate(values))
    return vs("  hosts: [r]\n  http:\n  - route:\n" + dests)


def tls_route(sni: str) -> str:
    return vs(f"  hosts: [a.example.com]\n  tls:\n  - match:\n    - sniHosts: [{sni}]\n"
              "    route:\n    - destination: {host: r}\n")


def direct(body: str) -> str:
    return vs("  hosts: [r]\n  http:\n  - directResponse:\n      status: 200\n      body:\n        " + body + "\n")


def query(name: str) -> str:
    return vs(f"  hosts: [r]\n  http:\n  - match:\n    - queryParams: {{'{name}': {{exact: a}}}}\n" + MATCHED)


# (example, code, line, refused input, accepted input)
EXAMPLES: list[tuple[str, str, int, str, str]] = [
    ("SIMPLE TLS with subjectAltNames and no CA", "MW0209", 10,
     dr(TLS + "      mode: SIMPLE\n      subjectAltNames: [a.example.com]\n"),
     dr(TLS + "      mode: SIMPLE\n      subjectAltNames: [a.example.com]\n      caCertificates: /etc/ca.pem\n")),
    ("duration beyond Envoy's range (9999999999s)", "MW0202", 10, vs(ROUTE + "    timeout: 9999999999s\n"),
     vs(ROUTE + "    timeout: 9223372035s\n")),
    ("duration beyond protobuf's range (315576000001s)", "MW0202", 10, vs(ROUTE + "    timeout: 315576000001s\n"),
     vs(ROUTE + "    timeout: 1h\n")),
    ("tcpKeepalive.time: 315576000000s (UInt32 seconds)", "MW0202", 10,
     dr(POOL + "        tcpKeepalive: {time: 315576000000s}\n"), dr(POOL + "        tcpKeepalive: {time: 4294967295s}\n")),
    ("minimumRingSize above 8,388,608", "MW0217", 10, dr(HASH + "        minimumRingSize: 8388609\n"),
     dr(HASH + "        minimumRingSize: 8388608\n")),
    ("ringHash.minimumRingSize above 8,388,608", "MW0217", 10,
     dr(HASH + "        ringHash: {minimumRingSize: 8388609}\n"), dr(HASH + "        ringHash: {minimumRingSize: 1024}\n")),
    ("maglev tableSize not prime", "MW0217", 10, dr(HASH + "        maglev: {tableSize: 65536}\n"),
     dr(HASH + "        maglev: {tableSize: 65537}\n")),
    ("relative caCertificates path", "MW0209", 10, dr(TLS + "      mode: SIMPLE\n      caCertificates: certs/ca.pem\n"),
     dr(TLS + "      mode: SIMPLE\n      caCertificates: /etc/certs/ca.pem\n")),
    ("relative serverCertificate path", "MW0209", 9,
     gw("    tls: {mode: SIMPLE, serverCertificate: tls.crt, privateKey: /k.pem}\n"),
     gw("    tls: {mode: SIMPLE, serverCertificate: /tls.crt, privateKey: /k.pem}\n")),
    ("header value with a lone %", "MW0224", 12, headers("response", "set", "x-a: '100%'"),
     headers("response", "set", "x-a: '100%%'")),
    ("header value with an unknown %COMMAND%", "MW0224", 12, headers("request", "add", "x-a: '%FOO%'"),
     headers("request", "add", "x-a: '%DOWNSTREAM_REMOTE_ADDRESS%'")),
    ("header value with a newline", "MW0224", 12, headers("response", "add", 'x-a: "a\\nb"'),
     headers("response", "add", "x-a: ab")),
    ("set of Host", "MW0215", 12, headers("request", "set", "Host: a.example.com"),
     headers("request", "set", "x-host: a.example.com")),
    ("set of :authority", "MW0215", 12, headers("request", "set", "':authority': a"), headers("request", "set", "x: a")),
    ("empty query-parameter name", "MW0212", 9, query(""), query("q")),
    ("empty prefix in a header match", "MW0212", 9, header_match("{prefix: ''}"), header_match("{}")),
    ("regex beyond Envoy's RE2 program size", "MW0225", 9, uri_regex("x{97}"), uri_regex("x{96}")),
    ("bind: unix://", "MW0218", 8,
     SIDECAR + "  egress:\n  - hosts: [./*]\n    port: {number: 80, protocol: HTTP, name: h}\n    bind: unix:///x\n",
     SIDECAR + "  egress:\n  - hosts: [./*]\n    port: {number: 80, protocol: HTTP, name: h}\n    bind: 127.0.0.1\n"),
    ("redirectCode Envoy cannot send (300)", "MW0222", 8, vs("  hosts: [r]\n  http:\n  - redirect: {uri: /a, redirectCode: 300}\n"),
     vs("  hosts: [r]\n  http:\n  - redirect: {uri: /a, redirectCode: 308}\n")),
    ("CR/LF in rewrite.uri", "MW0222", 10, vs(ROUTE + '    rewrite: {uri: "/a\\nb"}\n'),
     vs(ROUTE + "    rewrite: {uri: /ab}\n")),
    ("sni over 255 bytes", "MW0209", 10, dr(TLS + "      mode: SIMPLE\n      sni: " + "a" * 256 + "\n"),
     dr(TLS + "      mode: SIMPLE\n      sni: " + "a" * 255 + "\n")),
    ("directResponse body over 4096 bytes", "MW0222", 11, direct("string: " + "a" * 4097),
     direct("string: " + "a" * 4096)),
    ("directResponse body.bytes not base64", "MW0222", 11, direct("bytes: a"), direct("bytes: YQ==")),
    ("destination weights over 2^32-1 in total", "MW0204", 8, weights(2147483647, 2147483647, 2),
     weights(50, 50, 0)),
    ("fault abort grpcStatus over uint32 (compile crashed)", "MW0222", 11,
     vs(ROUTE + "    fault:\n      abort: {grpcStatus: '4294967296'}\n"),
     vs(ROUTE + "    fault:\n      abort: {grpcStatus: '4294967295'}\n")),
    ("sniHosts '*'", "MW0201", 9, tls_route("'*'"), tls_route("'*.example.com'")),
    ("Service clusterIPs that are not IPs (virtual host domains)", "MW0218", 7, SVC + "  clusterIPs: ['a b']\n",
     SVC + "  clusterIPs: [10.0.0.1]\n"),
    ("consistentHash.httpCookie.name ''", "MW0217", 10, dr(HASH + "        httpCookie: {name: '', ttl: 0s}\n"),
     dr(HASH + "        httpCookie: {name: c, ttl: 0s}\n")),
]


@pytest.mark.parametrize(("example", "code", "line", "bad", "good"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_is_rejected_at_its_line(example: str, code: str, line: int, bad: str, good: str) -> None:
    found = run(bad)
    assert [(d.code, d.position.line) for d in found] == [(code, line)], [d.render() for d in found]
    assert run(good) == [], [d.render() for d in run(good)]
