"""Every analyzer code (MW03xx): one input that triggers it, at the exact line, and a close one that does not.

Lines marked `# <-` in a failing input are exactly the lines the code must be reported at.
"""

from __future__ import annotations

import pytest

from compiler import codes, load, typed
from compiler.analyze import analyze
from compiler.diagnostics import Diagnostic
from compiler.resources import ResourceSet

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080}
---
"""


_EXT_AUTHZ_MESH = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    extensionProviders:
    - name: grpc-authz
      envoyExtAuthzGrpc: {service: shop/ratings.shop.svc.cluster.local, port: 9000}
---
"""


def _custom(name: str, provider: str, app: str) -> str:
    return (f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: shop}}\n"
            f"spec:\n  selector: {{matchLabels: {{app: {app}}}}}\n  action: CUSTOM\n  provider:\n    name: {provider}\n"
            "  rules:\n  - to:\n    - operation: {methods: [POST]}\n---\n")


def _vs(body: str, name: str = "reviews", ns: str = "shop") -> str:
    return f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\n" \
           f"spec:\n{body}---\n"


def _dr(body: str, name: str = "reviews", ns: str = "shop") -> str:
    return f"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {ns}}}\n" \
           f"spec:\n{body}---\n"


def _gw(body: str, name: str = "edge", ns: str = "shop") -> str:
    return f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {ns}}}\n" \
           f"spec:\n  selector: {{istio: ingressgateway}}\n{body}---\n"


def _se(body: str, name: str) -> str:
    return f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: shop}}\n" \
           f"spec:\n{body}---\n"


def _server(host: str, port: int = 80, tls: str = "", mark: str = "") -> str:
    """One server; `mark` goes on its TLS line when it has TLS settings, else on its first line."""
    head = f"  - port: {{number: {port}, name: p{port}, protocol: {'HTTPS' if tls else 'HTTP'}}}"
    tls_line = f"    tls: {{mode: SIMPLE, credentialName: {tls}}}{mark}\n" if tls else ""
    return f"{head}{'' if tls else mark}\n    hosts: [{host}]\n{tls_line}"


ROUTE_TO_REVIEWS = "  http:\n  - route:\n    - destination: {host: reviews}\n"
GATEWAY_EDGE = _gw("  servers:\n" + _server("reviews.example.com"))
_CLAIM_ROUTE = ("  http:\n  - match:\n    - headers: {'@request.auth.claims.group': {exact: admin}}\n"
                "    route:\n    - destination: {host: reviews}\n")
_JWT_GATEWAY = _gw("  servers:\n" + _server("shop.example.com")) + (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ingress, namespace: istio-system}\nspec:\n"
    "  template:\n    metadata: {labels: {istio: ingressgateway}}\n---\n")
DR_V1 = _dr("  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n")

def _otel_mesh(port: int, mark: str = "") -> str:
    """An envoyOtelAls provider `otel` sending to port `port` of reviews; `mark` goes on its service line, where a
    collector the registry lacks (with that port) is reported."""
    return ("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n"
            "  mesh: |-\n    extensionProviders:\n    - name: otel\n      envoyOtelAls:\n"
            f"        service: shop/reviews.shop.svc.cluster.local{mark}\n        port: {port}\n")


# code -> (failing input, passing input)
def _telemetry(provider: str) -> str:
    return ("---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: logs, namespace: shop}\n"
            f"spec:\n  accessLogging:\n  - providers:\n    - name: {provider}\n")


def _telemetry_of(name: str, selector: str, marked: bool = False) -> str:
    return (f"---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {{name: {name}, namespace: shop}}"
            f"{'  # <-' if marked else ''}\nspec:\n{selector}  accessLogging:\n  - providers: [{{name: envoy}}]\n")


def _metrics_providers(provider: str) -> str:
    return ("---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: m, namespace: shop}\n"
            f"spec:\n  metrics:\n  - providers:\n    - name: {provider}\n")


_POD = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: reviews-1, namespace: shop, labels: {app: reviews}}\n"


_MESH_TRACER = """\
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |-
    extensionProviders:
    - name: tracer
      zipkin: {service: zipkin.shop.svc.cluster.local, port: 9411}
    - name: logs
      envoyFileAccessLog: {path: /dev/stdout}
"""


def _tracing(*providers: str) -> str:
    return ("---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: traces, namespace: shop}\n"
            "spec:\n  tracing:\n  - providers:\n" + "".join(f"    - name: {p}\n" for p in providers))


_MESH_COLLECTOR = _MESH_TRACER.replace("zipkin.shop", "reviews.shop").replace("9411", "9080")


CASES: dict[str, tuple[str, str]] = {
    "MW0301": (
        _vs("  hosts: [reviews.example.com]\n  gateways:\n  - edge  # <-\n" + ROUTE_TO_REVIEWS),
        GATEWAY_EDGE + _vs("  hosts: [reviews.example.com]\n  gateways:\n  - edge\n" + ROUTE_TO_REVIEWS),
    ),
    "MW0302": (
        _vs("  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: ratings  # <-\n"),
        _vs("  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n"),
    ),
    "MW0303": (
        DR_V1 + _vs("  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n"
                    "        subset: v9  # <-\n"),
        DR_V1 + _vs("  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n"
                    "        subset: v1\n"),
    ),
    "MW0304": (
        ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow, namespace: shop}\n"
        "spec:\n  rules:\n  - from:\n    - source:\n        namespaces:\n        - nowhere  # <-\n"),
        ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow, namespace: shop}\n"
        "spec:\n  rules:\n  - from:\n    - source:\n        namespaces:\n        - shop\n"),
    ),
    "MW0305": (
        _vs("  hosts:\n  - reviews  # <-\n" + ROUTE_TO_REVIEWS)
        + _vs("  hosts:\n  - reviews.shop.svc.cluster.local  # <-\n" + ROUTE_TO_REVIEWS, name="reviews-2"),
        _vs("  hosts:\n  - reviews\n  exportTo: ['.']\n" + ROUTE_TO_REVIEWS)
        + _vs("  hosts:\n  - reviews.shop.svc.cluster.local\n  exportTo: [other]\n" + ROUTE_TO_REVIEWS,
              name="reviews-2"),
    ),
    "MW0306": (
        ("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: a  # <-\n  namespace: shop\n"
        "spec:\n  egress:\n  - hosts: ['./*']\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: b  # <-\n  namespace: shop\n"
        "spec:\n  egress:\n  - hosts: ['./*']\n"),
        ("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: a\n  namespace: shop\n"
        "spec:\n  egress:\n  - hosts: ['./*']\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: b\n  namespace: shop\n"
        "spec:\n  workloadSelector: {labels: {app: reviews}}\n  egress:\n  - hosts: ['./*']\n"),
    ),
    "MW0307": (
        "apiVersion: v1\nkind: Service\nmetadata: {name: ratings, namespace: shop}\nspec:\n  ports:\n"
        "  - {name: http, port: 9080}\n  - {name: grpc, port: 9090}\n---\n"
        + _vs("  hosts: [ratings]\n  http:\n  - route:\n    - destination:\n        host: ratings  # <-\n"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: ratings, namespace: shop}\nspec:\n  ports:\n"
        "  - {name: http, port: 9080}\n  - {name: grpc, port: 9090}\n---\n"
        + _vs("  hosts: [ratings]\n  http:\n  - route:\n    - destination:\n        host: ratings\n"
              "        port: {number: 9080}\n"),
    ),
    "MW0308": (
        ("apiVersion: v1\nkind: Service\nmetadata: {name: ratings, namespace: shop}\nspec:\n  ports:\n"
        "  - name: web  # <-\n    port: 9080\n"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: ratings, namespace: shop}\nspec:\n  ports:\n"
        "  - name: http-web\n    port: 9080\n"),
    ),
    "MW0309": (
        _dr("  host: reviews\n  trafficPolicy:\n    tls:\n      mode: SIMPLE  # <-\n"),
        _dr("  host: reviews\n  trafficPolicy:\n    tls:\n      mode: SIMPLE\n      caCertificates: /etc/ca.pem\n"),
    ),
    "MW0310": (
        _dr("  host: reviews\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 9080}\n      tls:\n"
            "        mode: MUTUAL  # <-\n        clientCertificate: /c.pem\n        privateKey: /k.pem\n"),
        _dr("  host: reviews\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 9080}\n      tls:\n"
            "        mode: MUTUAL\n        clientCertificate: /c.pem\n        privateKey: /k.pem\n"
            "        caCertificates: /ca.pem\n"),
    ),
    "MW0311": (
        _vs("  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n"
            "  - route:  # <-\n    - destination: {host: reviews}\n"),
        _vs("  hosts: [reviews]\n  http:\n  - match:\n    - uri: {prefix: /a}\n    route:\n"
            "    - destination: {host: reviews}\n  - route:\n    - destination: {host: reviews}\n"),
    ),
    "MW0312": (
        _vs("  hosts: [reviews]\n  http:\n  - match:\n    - uri: {prefix: /api}\n    route:\n"
            "    - destination: {host: reviews}\n  - match:\n    - uri: {prefix: /api/v1}  # <-\n"
            "    - uri: {prefix: /b}\n    route:\n    - destination: {host: reviews}\n"),
        _vs("  hosts: [reviews]\n  http:\n  - match:\n    - uri: {prefix: /api/v1}\n    route:\n"
            "    - destination: {host: reviews}\n  - match:\n    - uri: {prefix: /api}\n"
            "    - uri: {prefix: /b}\n    route:\n    - destination: {host: reviews}\n"),
    ),
    "MW0313": (
        GATEWAY_EDGE + _vs("  hosts: [ratings.example.com]\n  gateways:\n  - edge  # <-\n" + ROUTE_TO_REVIEWS),
        GATEWAY_EDGE + _vs("  hosts: [reviews.example.com]\n  gateways:\n  - edge\n" + ROUTE_TO_REVIEWS),
    ),
    "MW0314": (
        _gw("  servers:\n" + _server("a.example.com", 443, tls="shared-cert", mark="  # <-"), name="a")
        + _gw("  servers:\n" + _server("b.example.com", 443, tls="shared-cert", mark="  # <-"), name="b"),
        _gw("  servers:\n" + _server("a.example.com", 443, tls="a-cert"), name="a")
        + _gw("  servers:\n" + _server("b.example.com", 443, tls="b-cert"), name="b"),
    ),
    "MW0315": (
        DR_V1 + GATEWAY_EDGE
        + _vs("  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n")
        + _vs("  hosts: [reviews.example.com]\n  gateways: [edge]\n  http:\n  - route:\n    - destination:\n"
              "        host: reviews  # <-\n", name="edge-routes"),
        DR_V1 + GATEWAY_EDGE
        + _vs("  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n")
        + _vs("  hosts: [reviews.example.com]\n  gateways: [edge]\n  http:\n  - route:\n    - destination:\n"
              "        host: reviews\n        subset: v1\n", name="edge-routes"),
    ),
    "MW0316": (
        _gw("  servers:\n" + _server("shop.example.com", mark="  # <-"), name="a")
        + _gw("  servers:\n" + _server("shop.example.com", mark="  # <-"), name="b"),
        _gw("  servers:\n" + _server("shop.example.com"), name="a")
        + _gw("  servers:\n" + _server("shop.example.com", port=8080), name="b"),
    ),
    "MW0317": (
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm1, namespace: shop}\n"
        "spec:\n  address: 10.0.0.7\n  labels: {app: reviews, version: v1}\n---\n"
        + _dr("  host: reviews\n  subsets:\n  - name: v2\n    labels: {version: v2}  # <-\n"),
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm1, namespace: shop}\n"
        "spec:\n  address: 10.0.0.7\n  labels: {app: reviews, version: v1}\n---\n"
        + _dr("  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n"),
    ),
    "MW0318": (
        _dr("  host: ratings  # <-\n"),
        _dr("  host: reviews\n"),
    ),
    "MW0319": (
        _se("  hosts: [api.example.com]\n  resolution: DNS\n  ports:\n  - {number: 8443, name: tls, protocol: TLS}"
            "  # <-\n", name="a")
        + _se("  hosts: [api.example.com]\n  resolution: DNS\n  ports:\n  - {number: 8443, name: h, protocol: HTTP}"
              "  # <-\n", name="b"),
        _se("  hosts: [api.example.com]\n  resolution: DNS\n  ports:\n  - {number: 8443, name: tls, protocol: TLS}\n",
            name="a")
        + _se("  hosts: [api.example.com]\n  resolution: DNS\n  ports:\n  - {number: 8443, name: t, protocol: TLS}\n",
              name="b"),
    ),
    "MW0320": (
        DR_V1 + _dr("  host: reviews  # <-\n  subsets:\n  - name: v2\n    labels: {version: v2}\n", name="reviews-v2"),
        DR_V1 + _dr("  host: reviews.shop.svc.cluster.local\n", name="reviews-v2", ns="other"),
    ),
    "MW0321": (
        _se("  hosts: [db.example.com]\n  resolution: DNS\n  ports:\n  - {number: 5432, name: pg, protocol: TCP}"
            "  # <-\n", name="db"),
        _se("  hosts: [db.example.com]\n  addresses: [192.0.2.10]\n  resolution: DNS\n  ports:\n"
            "  - {number: 5432, name: pg, protocol: TCP}\n", name="db"),
    ),
    "MW0322": (
        ("apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: shop}\nspec:\n  type: ExternalName\n"
        "  externalName: api.example.com\n  ports:\n  - name: tcp  # <-\n    port: 443\n"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: shop}\nspec:\n  type: ExternalName\n"
        "  externalName: api.example.com\n  ports:\n  - name: https\n    port: 443\n"),
    ),
    "MW0323": (
        _vs("  hosts: [reviews]\n  http:\n  - fault:\n      delay:\n        fixedDelay: 1s\n        percent: 10  # <-\n"
            "    route:\n    - destination: {host: reviews}\n"),
        _vs("  hosts: [reviews]\n  http:\n  - fault:\n      delay:\n        fixedDelay: 1s\n"
            "        percentage: {value: 10}\n    route:\n    - destination: {host: reviews}\n"),
    ),
    "MW0324": (
        _vs("  hosts: [reviews.example.com]\n  gateways:\n  - istio-ingress/gw-istio-autogenerated-k8s-gateway-http"
            "  # <-\n" + ROUTE_TO_REVIEWS),
        GATEWAY_EDGE + _vs("  hosts: [reviews.example.com]\n  gateways:\n  - shop/edge\n" + ROUTE_TO_REVIEWS),
    ),
    "MW0325": (
        _vs("  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n        port:\n"
            "          number: 9999  # <-\n"),
        _vs("  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n        port:\n"
            "          number: 9080\n"),
    ),
    "MW0326": (
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: reviews, namespace: shop}\nspec:\n  template:\n"
         "    metadata: {labels: {app: reviews}}\n---\n"
         "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n"
         "  selector:  # <-\n    matchLabels: {app: ratings}\n---\n"
         "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: q, namespace: empty}\n"
         "spec:  # <-\n  action: DENY\n"),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: reviews, namespace: shop}\nspec:\n  template:\n"
         "    metadata: {labels: {app: reviews}}\n---\n"
         "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: istio-system}\n"
         "spec:\n  selector:\n    matchLabels: {app: reviews}\n---\n"
         "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: q, namespace: shop}\n"
         "spec:\n  action: DENY\n"),
    ),
    "MW0327": (
        _JWT_GATEWAY + _vs("  hosts: [shop.example.com]\n  gateways:\n  - edge  # <-\n" + _CLAIM_ROUTE),
        _JWT_GATEWAY + _vs("  hosts: [shop.example.com]\n  gateways:\n  - edge\n" + _CLAIM_ROUTE)
        + "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: istio-system}\n"
          "spec:\n  selector: {matchLabels: {istio: ingressgateway}}\n",
    ),
    "MW0328": (
        _EXT_AUTHZ_MESH + _custom("a", "grpc-authz  # <-", "ratings") + _custom("b", "opa  # <-", "reviews"),
        _EXT_AUTHZ_MESH.replace("ratings.shop", "reviews.shop") + _custom("a", "grpc-authz", "ratings"),
    ),
    "MW0329": (_telemetry("nowhere  # <-"), _telemetry("envoy")),
    "MW0330": (_MESH_TRACER + _telemetry("tracer  # <-"), _MESH_TRACER + _telemetry("logs")),
    "MW0331": (_telemetry_of("a", "", True) + _telemetry_of("b", "", True),
               _telemetry_of("a", "") + _telemetry_of("b", "  selector: {matchLabels: {app: reviews}}\n")),
    "MW0332": (_POD + _telemetry_of("a", "  selector: {matchLabels: {app: reviews}}\n", True)
               + _telemetry_of("b", "  selector: {matchLabels: {app: reviews}}\n", True),
               _POD + _telemetry_of("a", "  selector: {matchLabels: {app: reviews}}\n")
               + _telemetry_of("b", "  selector: {matchLabels: {app: ratings}}\n")),
    "MW0333": (_POD + _telemetry_of("a", "  selector:\n    matchLabels:  # <-\n      app: ratings\n"),
               _POD + _telemetry_of("a", "  selector:\n    matchLabels:\n      app: reviews\n")),
    "MW0335": (_metrics_providers("envoy  # <-"), _metrics_providers("prometheus")),
    "MW0334": (_telemetry("envoy") + "  - disabled: false  # <-\n",
               _telemetry("envoy") + "  - disabled: true\n"),
    "MW0336": (_MESH_COLLECTOR + _tracing("logs  # <-"), _MESH_COLLECTOR + _tracing("tracer")),
    "MW0337": (_MESH_TRACER.replace("9411}", "9411}  # <-") + _tracing("tracer"),
               _MESH_COLLECTOR + _tracing("tracer")),
    "MW0338": (_MESH_COLLECTOR + _tracing("tracer", "logs  # <-"), _MESH_COLLECTOR + _tracing("tracer")),
    "MW0340": (_otel_mesh(4317, "  # <-") + _telemetry("otel"), _otel_mesh(9080) + _telemetry("otel")),
}


def _run(text: str) -> list[Diagnostic]:
    loaded = load.load_text(SERVICE + text, "case.yaml")
    assert not loaded.diagnostics, [d.render() for d in loaded.diagnostics]
    resources, problems = typed.to_resources(loaded.documents)
    assert not problems, [d.render() for d in problems]  # the fixture itself must be well-formed
    return analyze(ResourceSet(resources))


def _marked_lines(text: str) -> set[int]:
    return {n for n, line in enumerate((SERVICE + text).splitlines(), start=1) if line.rstrip().endswith("# <-")}


def test_every_analyzer_code_has_a_case() -> None:
    analyzer_codes = {c.code for c in codes.all_codes() if c.code.startswith("MW03")}
    assert analyzer_codes == set(CASES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_code_reported_at_marked_line(code: str) -> None:
    failing, _ = CASES[code]
    lines = {d.position.line for d in _run(failing) if d.code == code}
    assert lines == _marked_lines(failing)
    assert lines, "the fixture marks no line"


@pytest.mark.parametrize("code", sorted(CASES))
def test_code_not_reported_for_passing_input(code: str) -> None:
    _, passing = CASES[code]
    found = [d.render() for d in _run(passing) if d.code == code]
    assert not found


def test_a_credential_without_workload_selector_is_reported_with_why() -> None:
    """Istio's analyzer reports it too (analyzers_test.go): Pilot uses the credential at gateways only, so the
    message says that rather than asking for caCertificates, which Istio refuses beside credentialName."""
    tls = "  trafficPolicy:\n    tls: {mode: MUTUAL, credentialName: client}\n"
    [found] = [d for d in _run(_dr("  host: reviews\n" + tls)) if d.code == "MW0309"]
    assert "credentialName client without a workloadSelector is for gateways" in found.message
    selected = _dr("  host: reviews\n  workloadSelector: {matchLabels: {app: web}}\n" + tls)
    assert not [d for d in _run(selected) if d.code == "MW0309"]
