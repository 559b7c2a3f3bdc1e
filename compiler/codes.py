"""The one registry of diagnostic codes.

A code never changes meaning. `docs/messages.md` is generated from this table (`meshward messages --write docs`) and a
test fails when it drifts. `istio` names the `istioctl analyze` message a code matches, where Istio has one.
Ranges: MW00xx loading, MW01xx structure (schema), MW02xx per-resource semantics (Istio's validation webhook
rules), MW03xx cross-resource analyzers, MW04xx compile (model and emit), MW05xx routing tests (`meshward test`).

An error is *rejected* (the revision is not served; proxies keep the last good one) when Istio's validating webhook
would reject the object or Envoy would refuse the config. An error is *flagged* (`flagged=True`) when it is an
analyzer finding about a config Pilot serves anyway: it is reported with Istio's code and severity, and the revision
is served with Pilot's semantics (a route to a cluster nobody defines answers 503 at runtime), unless `--strict`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Code:
    code: str
    severity: str  # "error" | "warning"
    title: str
    hint: str
    istio: str = ""
    flagged: bool = False  # an error about a config Pilot serves: reported, served unless --strict

    @property
    def blocks(self) -> str:
        """Whether a diagnostic of this code keeps a revision from being served (docs/messages.md)."""
        if self.severity != "error":
            return "no"
        return "with --strict" if self.flagged else "yes"


_TABLE: tuple[Code, ...] = (
    # -- loading --------------------------------------------------------------------------------------------
    Code("MW0001", "error", "YAML syntax error", "fix the YAML syntax at this position"),
    Code("MW0002", "error", "duplicate mapping key", "remove or rename one of the duplicate keys"),
    Code("MW0003", "error", "file is not UTF-8 text", "save the file as UTF-8 text, or move it out of the policy tree"),
    Code("MW0004", "error", "file too large", "split the file; policy files over the size limit are not read"),
    Code("MW0005", "warning", "kind not modeled, skipped", "meshward ignores this kind; remove it or move it out of the policy tree"),
    Code("MW0006", "error", "not a Kubernetes object", "each YAML document needs apiVersion, kind and metadata"),
    Code("MW0007", "error", "unsupported apiVersion", "use one of the API versions Istio serves for this kind"),
    Code("MW0008", "error", "missing or invalid metadata.name", "set metadata.name to a DNS-1123 name"),
    Code("MW0009", "error", "cannot read path", "check that the path exists and is readable"),
    Code("MW0010", "warning", "symlink leaves the tree, skipped", "replace the symlink by the file it points to"),
    Code("MW0011", "warning", "duplicate resource", "two documents define the same kind, namespace and name; the later one is used, keep one"),
    Code("MW0012", "error", "invalid namespace", "set metadata.namespace to a DNS-1123 label"),
    Code("MW0013", "error", "path leaves the repository", "the policy path resolves (through symlinks) outside the commit; point it at a directory inside the repository"),
    Code("MW0014", "error", "not a regular file", "a FIFO, socket or device named like a policy file is never read; remove it or rename it"),
    Code("MW0015", "error", "YAML document too large", "split the document: Kubernetes stores no object over 1.5 MiB (etcd's default request limit)"),
    Code("MW0016", "error", "YAML nested too deeply", "flatten the document; no Istio resource nests anywhere near this deep"),
    Code("MW0017", "error", "too many YAML nodes", "split the document, or use fewer aliases: each use of an alias counts its whole anchored node"),
    # -- structure (JSON Schema / models) --------------------------------------------------------------------
    Code("MW0101", "error", "unknown field", "remove the field or fix its spelling", "IST0106"),
    Code("MW0102", "error", "invalid value or type", "give the field a value of the type the schema expects", "IST0106"),
    Code("MW0103", "error", "required field missing", "add the required field", "IST0106"),
    Code("MW0104", "warning", "MeshConfig field not modeled", "meshward ignores this field of the istio ConfigMap's mesh; README's MeshConfig section lists the fields it reads"),
    Code("MW0105", "warning", "istio ConfigMap not read", "move the ConfigMap to istio-system (or set its rootNamespace to the namespace it is in)"),
    # -- per-resource semantics (Istio pkg/config/validation) ------------------------------------------------
    Code("MW0201", "error", "invalid host", "use a FQDN, a short name, or a wildcard prefix like *.example.com", "IST0106"),
    Code("MW0202", "error", "invalid duration", "use a duration like 1.5s or 300ms, at least 1ms", "IST0106"),
    Code("MW0203", "error", "invalid port", "ports are integers from 1 to 65535", "IST0106"),
    Code("MW0204", "error", "invalid weight", "weights are >= 0 and at least one must be > 0", "IST0106"),
    Code("MW0205", "warning", "weights do not add up to 100", "Envoy normalizes weights; make them add up to 100 to say what you mean"),
    Code("MW0206", "error", "invalid regular expression", "Envoy uses RE2: no backreferences or lookaround", "IST0106"),
    Code("MW0207", "error", "invalid retryOn policy", "use Envoy retry conditions (5xx, gateway-error, ...) or HTTP status codes", "IST0106"),
    Code("MW0208", "error", "invalid percentage", "percentages are between 0 and 100", "IST0106"),
    Code("MW0209", "error", "invalid TLS settings", "check the TLS mode and the fields it requires", "IST0106"),
    Code("MW0210", "error", "duplicate subset name", "subset names must be unique within a DestinationRule", "IST0106"),
    Code("MW0211", "error", "invalid label selector", "label keys and values must be valid Kubernetes labels", "IST0106"),
    Code("MW0212", "error", "invalid match", "check the match conditions of this rule", "IST0106"),
    Code("MW0213", "error", "invalid gateway server", "check the server's port, hosts and TLS settings", "IST0106"),
    Code("MW0214", "error", "invalid service entry", "check hosts, addresses, resolution and endpoints", "IST0106"),
    Code("MW0215", "error", "invalid header name or operation", "header names are lowercase tokens; some headers cannot be changed", "IST0106"),
    Code("MW0216", "error", "conflicting route actions", "a route has one of route, redirect or directResponse", "IST0106"),
    Code("MW0217", "error", "invalid traffic policy", "check load balancer, connection pool and outlier detection values", "IST0106"),
    Code("MW0218", "error", "invalid IP address or CIDR", "use an IPv4/IPv6 address or CIDR block", "IST0106"),
    Code("MW0219", "error", "invalid authorization policy", "check action, rules and provider", "IST0106"),
    Code("MW0220", "error", "invalid authentication policy", "check mTLS mode, JWT rules and selectors", "IST0106"),
    Code("MW0221", "error", "invalid Sidecar", "check egress hosts (namespace/host), ingress ports and capture modes", "IST0106"),
    Code("MW0222", "error", "invalid value", "see Istio's API reference for this field", "IST0106"),
    Code("MW0223", "error", "invalid exportTo", "exportTo takes '.', '*' or namespace names, without duplicates", "IST0106"),
    Code("MW0224", "error", "header value Envoy refuses", "no NUL, CR or LF; write a literal % as %%; %COMMAND% must be one of Envoy's substitution commands meshward allows"),
    Code("MW0225", "error", "regular expression too large for Envoy", "Envoy refuses RE2 programs over size 100 (re2.max_program_size.error_level): simplify the pattern or split the match"),
    Code("MW0226", "error", "authorization meshward cannot enforce", "rewrite the rule with the keys and values docs/security.md (Authorization) lists as compiled; meshward refuses it rather than allow what it cannot check"),
    Code("MW0227", "error", "policy bound to a target meshward does not build", "targetRef(s) bind Kubernetes Gateways and ambient waypoints, which meshward does not build: use selector to bind the policy to the workloads' sidecars or an Istio Gateway's pods", flagged=True),
    Code("MW0240", "error", "invalid MeshConfig", "fix the istio ConfigMap's mesh at this line: see Istio's MeshConfig reference", "IST0106"),
    Code("MW0241", "error", "invalid Telemetry", "check the selector and targetRefs: see Istio's Telemetry reference", "IST0106"),
    Code("MW0242", "error", "invalid CEL expression", "fix the access-log filter's expression: see the CEL language definition (cel-spec langdef)", "IST0106"),
    Code("MW0243", "error", "CEL expression Envoy refuses", "Envoy's CEL access-log filter would refuse the listener: use its attributes and functions without comprehensions, nest under 32 levels (README, Telemetry)"),
    Code("MW0244", "warning", "CEL name Envoy does not offer", "use one of Envoy's attributes (request, response, connection, upstream, source, destination, metadata, filter_state, xds): any other name evaluates to an error, so the filter does not match"),
    # -- cross-resource analyzers (istioctl analyze) ---------------------------------------------------------
    Code("MW0301", "error", "referenced gateway not found", "define the Gateway or fix the reference (namespace/name)", "IST0101", flagged=True),
    Code("MW0302", "error", "destination host not found", "define a Service or ServiceEntry for the host, or fix the name", "IST0101", flagged=True),
    Code("MW0303", "error", "subset not found", "define the subset in a DestinationRule for the host", "IST0101", flagged=True),
    Code("MW0304", "error", "referenced namespace not found", "create the namespace or fix the reference", "IST0101", flagged=True),
    Code("MW0305", "error", "conflicting mesh VirtualServices for a host", "merge the VirtualServices, or use exportTo so only one is visible", "IST0109", flagged=True),
    Code("MW0306", "error", "several namespace-wide Sidecars", "keep one Sidecar without workloadSelector per namespace", "IST0111", flagged=True),
    Code("MW0307", "error", "destination port required", "the host has several ports: set destination.port.number", "IST0112", flagged=True),
    Code("MW0308", "warning", "port name gives no protocol", "name the port <protocol>[-suffix] (http, grpc, tcp, ...) or set appProtocol", "IST0118"),
    Code("MW0309", "warning", "TLS without server verification", "set caCertificates (or credentialName, with a workloadSelector for sidecars) so the server certificate is verified", "IST0128"),
    Code("MW0310", "warning", "port-level TLS without server verification", "set caCertificates (or credentialName, with a workloadSelector for sidecars) in the port-level TLS settings", "IST0129"),
    Code("MW0311", "warning", "unreachable rule", "an earlier rule matches everything this one matches; reorder or remove it", "IST0130"),
    Code("MW0312", "warning", "ineffective match", "an earlier match covers this match; reorder or remove it", "IST0131"),
    Code("MW0313", "warning", "host not served by the gateway", "add the host to the Gateway's servers, or remove it from the VirtualService", "IST0132"),
    Code("MW0314", "warning", "duplicate gateway certificate", "use distinct credentials per server, or merge the servers", "IST0138"),
    Code("MW0315", "warning", "rule has no effect on ingress", "ingress gateways ignore this host; route the gateway's own hosts", "IST0140"),
    Code("MW0316", "error", "conflicting gateways", "two Gateways on the same workload claim the same port and host", "IST0145", flagged=True),
    Code("MW0317", "warning", "subset selects no endpoint", "fix the subset labels or add endpoints that carry them", "IST0173"),
    Code("MW0318", "warning", "DestinationRule host unknown", "define a Service or ServiceEntry for the host, or fix the name", "IST0174"),
    Code("MW0319", "warning", "conflicting ServiceEntry protocols", "give each port of a host one protocol across ServiceEntries", "IST0177"),
    Code("MW0320", "warning", "DestinationRules merged", "several DestinationRules apply to one host; the first one's traffic policy wins"),
    Code("MW0321", "warning", "ServiceEntry needs addresses", "set addresses, or declare an HTTP-like protocol for the port", "IST0134"),
    Code("MW0322", "warning", "ExternalName port name invalid", "name the port after its protocol", "IST0150"),
    Code("MW0323", "warning", "deprecated field or kind", "move to the replacement the message names", "IST0002"),
    Code("MW0324", "warning", "internal gateway referenced", "reference the Kubernetes Gateway's own resources, not the Gateway Istio generates for it", "IST0165"),
    Code("MW0325", "error", "destination port not found", "use one of the ports the Service or ServiceEntry declares", "IST0101", flagged=True),
    Code("MW0326", "warning", "no workload matches the policy", "fix the selector, or create the workloads (with a sidecar) it is meant for; as it stands the policy applies to nothing", "IST0127"),
    Code("MW0327", "error", "JWT claim routing without RequestAuthentication", "apply a RequestAuthentication to the gateway's pods (root namespace or theirs), so that tokens are verified and their claims can be routed on", "IST0149", flagged=True),
    Code("MW0328", "error", "CUSTOM policy's ext_authz provider cannot be built", "define the provider in the istio ConfigMap's mesh extensionProviders (envoyExtAuthzHttp or envoyExtAuthzGrpc) with a service of the tree (NAMESPACE/HOSTNAME), or fix provider.name; until then Istio denies the requests the policy matches", flagged=True),
    Code("MW0329", "error", "unknown telemetry provider", "name a provider of MeshConfig extensionProviders (or Istio's built-in envoy or prometheus)"),
    Code("MW0330", "error", "provider cannot log access", "access logging takes an envoyFileAccessLog or envoyOtelAls provider (envoy, or one of extensionProviders)"),
    Code("MW0331", "error", "several namespace-wide Telemetries", "keep one Telemetry without selector per namespace (Pilot applies the oldest), or give the others a selector", "IST0160", flagged=True),
    Code("MW0332", "error", "workload selected by several Telemetries", "make the selectors of a namespace's Telemetries select disjoint workloads, or merge the Telemetries", "IST0159", flagged=True),
    Code("MW0333", "error", "Telemetry selects no workload", "fix the selector's labels, or create the workload in the Telemetry's namespace", "IST0101", flagged=True),
    Code("MW0334", "warning", "access logging without provider", "name a provider in the entry, or set MeshConfig defaultProviders.accessLogging", "IST0157"),
    Code("MW0335", "error", "provider cannot report metrics", "metrics take a prometheus provider (prometheus, or one of extensionProviders)"),
    Code("MW0336", "error", "provider cannot trace", "tracing takes a zipkin or opentelemetry provider of MeshConfig extensionProviders"),
    Code("MW0337", "error", "tracing collector not in the registry", "give the provider the service (NAMESPACE/HOSTNAME) and port of a Service or ServiceEntry of the tree: the proxies' tracer sends spans to its cluster"),
    Code("MW0338", "warning", "several tracing providers", "Pilot uses the first provider of a tracing entry: name one"),
    Code("MW0340", "error", "access-log collector not in the registry", "give the envoyOtelAls provider the service (NAMESPACE/HOSTNAME) and port of a Service or ServiceEntry of the tree: the proxies' OpenTelemetry logger sends its records to that cluster (Pilot skips a logger it cannot resolve)"),
    # -- compile ---------------------------------------------------------------------------------------------
    Code("MW0401", "error", "unknown proxy", "no WorkloadEntry, Pod, EndpointSlice endpoint, or Deployment, StatefulSet, DaemonSet or ReplicaSet whose pod names it fits, matches this node id"),
    Code("MW0402", "error", "invalid node id", "use TYPE~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local"),
    Code("MW0403", "warning", "feature not compiled", "the policy validates, but meshward does not emit this feature yet (see README limitations)"),
    Code("MW0404", "error", "internal compiler error", "a bug in meshward: please report it with the input"),
    Code("MW0405", "warning", "delegated route skipped", "create the delegate VirtualService (without hosts) in the namespace named, export it to the root's namespace, or narrow its match to fall inside the root route's"),
    Code("MW0410", "error", "static bootstrap lacks secrets", "the proxy's config names SDS secrets that neither the policy nor --credentials-dir holds; Envoy would refuse the bootstrap"),
    Code("MW0411", "warning", "gateway server not served", "an earlier server of the same gateway proxy port wins; move this server to a free port, or make the protocols and hosts compatible"),
    Code("MW0412", "warning", "jwksUri or discovered key set unavailable", "make the jwksUri (or the issuer's OpenID discovery document and the jwks_uri it names) reachable from meshward serve over https, or write the keys in `jwks`; requests without a token still pass"),
    Code("MW0413", "warning", "principal of another trust domain", "write the principal with cluster.local, which stands for the mesh's trust domain and its aliases, or make its domain an alias (--trust-domain-alias)"),
    # -- routing tests (meshward test) -----------------------------------------------------------------------
    Code("MW0501", "error", "not a routing test file", "a test file (*_test.yaml, or any file under --tests) holds testCases; move other files out"),
    Code("MW0502", "error", "invalid routing test", "docs/policy.md's Routing tests section describes the test file format"),
    Code("MW0503", "error", "test proxy not found", "name a proxy of the tree in `from`: a node id, workload: NAMESPACE/NAME, or gateway: NAMESPACE/NAME"),
)

REGISTRY: dict[str, Code] = {c.code: c for c in _TABLE}


def get(code: str) -> Code:
    return REGISTRY[code]


def all_codes() -> list[Code]:
    return sorted(REGISTRY.values(), key=lambda c: c.code)


def render_markdown() -> str:
    """docs/messages.md, generated."""
    lines = [
        "# Diagnostic codes",
        "",
        "Generated from `compiler/codes.py` by `meshward messages --write docs`; do not edit by hand.",
        "A code never changes meaning. `Istio` names the `istioctl analyze` message it matches.",
        "`blocks`: whether the revision is not served. `yes`: rejected, as Istio's validating webhook (or Envoy)",
        "would reject it; `with --strict`: flagged, an analyzer finding about a config Pilot serves, so meshward",
        "serves it with Pilot's semantics and reports it, unless `meshward serve --strict` / `compile --strict`.",
        "",
        "| code | severity | blocks | Istio | what | what to do |",
        "|---|---|---|---|---|---|",
    ]
    for c in all_codes():
        lines.append(f"| {c.code} | {c.severity} | {c.blocks} | {c.istio or '-'} | {c.title} | {c.hint} |")
    return "\n".join(lines) + "\n"
