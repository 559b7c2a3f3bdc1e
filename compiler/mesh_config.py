"""MeshConfig in Git: the `istio` ConfigMap of the root namespace, its `mesh` key parsed, typed and checked.

Istio keeps its mesh-wide settings as YAML text inside a ConfigMap (`data.mesh`), so a mistake in it sits at a line
of the ConfigMap's file that the ConfigMap's own document knows nothing about. The embedded text is given a
`Document` of its own whose first line is the block's first line in the file (and whose text keeps the block's
indentation), so every diagnostic below points at the file's line and column. Fields meshward does not model are
warnings at their line (MW0104), never silently ignored; modeled fields it does not compile yet are MW0403.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from compiler import diagnostics as diag
from compiler import positions, typed, units, yaml_bounds
from compiler.api import introspect
from compiler.api.mesh_config import (
    ExtAuthzGrpcProvider,
    ExtensionProvider,
    MeshConfig,
    OpenTelemetryProvider,
)
from compiler.diagnostics import Diagnostic, Position
from compiler.load import Document
from compiler.resources import Resource
from compiler.trust import TrustDomain
from compiler.validate import destination_rule, ext_authz, fields, hosts

CONFIG_MAP = "istio"  # pilot/pkg/bootstrap: the mesh config's ConfigMap name (default revision)
KEY = "mesh"
ISTIOD_NAMESPACE = "istio-system"
# what translate compiles today; any other modeled field that is set is reported as not compiled (MW0403)
COMPILED = frozenset({"rootNamespace", "trustDomain", "trustDomainAliases", "outboundTrafficPolicy", "accessLogFile",
                      "accessLogFormat", "accessLogEncoding", "extensionProviders", "connectTimeout",
                      "h2UpgradePolicy", "defaultServiceExportTo", "defaultVirtualServiceExportTo",
                      "defaultDestinationRuleExportTo", "localityLbSetting"})
# modeled fields translate compiles in part: the parts it compiles (another part that is set is MW0403 at its line)
_COMPILED_PARTS = {"defaultConfig": frozenset({"tracing"}), "defaultProviders": frozenset({"accessLogging", "tracing",
                                                                                         "metrics"})}
# why a field is not compiled, where it says more than "not yet"
_WHY_NOT = {"enableTracing": "it switches Istio's legacy tracer of the proxy bootstrap (ProxyConfig.tracing), which "
                             "meshward's bootstraps do not have: trace with a Telemetry or defaultProviders.tracing"}
# the provider kinds translate compiles (access logs: file and OpenTelemetry; ext_authz for CUSTOM; tracers;
# metrics); another kind is MW0403
_COMPILED_PROVIDERS = frozenset({"envoy_file_access_log", "envoy_otel_als", "envoy_ext_authz_http",
                                 "envoy_ext_authz_grpc", "zipkin", "opentelemetry", "prometheus"})
_CONNECT_TIMEOUT_MAX_MS = 3_600_000  # pkg/config/validation/agent/validation.go connectTimeoutMax
_SERVICE_PROVIDERS = ("zipkin", "opentelemetry", "lightstep", "envoyOtelAls", "envoyExtAuthzHttp", "envoyExtAuthzGrpc")


@dataclasses.dataclass(frozen=True, slots=True)
class Parsed:
    config: MeshConfig | None  # None when the text does not type-check
    diagnostics: tuple[Diagnostic, ...]


def holds_mesh_config(res: Resource) -> bool:
    """The `istio` ConfigMap with a `mesh` key, in any namespace (`find` says which one is read)."""
    return res.kind == "ConfigMap" and res.name == CONFIG_MAP and KEY in (res.spec.data or {})


def find(resources: Sequence[Resource]) -> Resource | None:
    """The ConfigMap Istio reads: the one in istiod's namespace (istio-system), else one in the namespace its own
    `rootNamespace` names."""
    found = [r for r in resources if holds_mesh_config(r)]
    for res in sorted(found, key=lambda r: (r.namespace != ISTIOD_NAMESPACE, r.namespace)):
        parsed = parse(res)
        root = parsed.config.root_namespace if parsed.config is not None else ISTIOD_NAMESPACE
        if res.namespace in (ISTIOD_NAMESPACE, root):
            return res
    return None


def config_of(resources: Sequence[Resource]) -> MeshConfig:
    """The revision's MeshConfig: the ConfigMap's when there is a valid one, else Istio's defaults."""
    res = find(resources)
    parsed = parse(res) if res is not None else None
    return parsed.config if parsed is not None and parsed.config is not None else MeshConfig()


def trust_conflicts(resources: Sequence[Resource], trust: TrustDomain) -> list[Diagnostic]:
    """The build's trust domain (`--trust-domain`, `--trust-domain-alias`: the CA issues identities in it) is the
    mesh's; a MeshConfig that sets another one is an error at its line rather than a silent second opinion."""
    res = find(resources)
    config = parse(res).config if res is not None else None
    if res is None or config is None:
        return []
    doc, out = _embedded(res), []
    if "trust_domain" in config.model_fields_set and config.trust_domain != trust.domain:
        out.append(diag.make("MW0240", f'trustDomain "{config.trust_domain}" is not the trust domain this build '
                             f'was given ("{trust.domain}", which the CA issues identities in): start meshward with '
                             f"--trust-domain {config.trust_domain}, or drop the field",
                             positions.locate(doc, ("trustDomain",)), path=_path(("trustDomain",)),
                             resource=res.origin))
    aliases = tuple(config.trust_domain_aliases or ())
    if "trust_domain_aliases" in config.model_fields_set and aliases != trust.aliases:
        out.append(diag.make("MW0240", f"trustDomainAliases {list(aliases)} are not the aliases this build was given "
                             f"({list(trust.aliases)}): give each with --trust-domain-alias, or drop the field",
                             positions.locate(doc, ("trustDomainAliases",)), path=_path(("trustDomainAliases",)),
                             resource=res.origin))
    return out


def diagnostic_at(res: Resource, code: str, message: str, path: Sequence[str | int]) -> Diagnostic:
    """A diagnostic at a field of the ConfigMap's MeshConfig (`path` inside `data.mesh`), for the analyzers that
    judge MeshConfig against the rest of the tree."""
    return diag.make(code, message, _locate(_embedded(res), path), path=_path(path), resource=res.origin)


def parse(res: Resource) -> Parsed:
    """The ConfigMap's MeshConfig and every diagnostic about it, located in the ConfigMap's file."""
    text = res.spec.data[KEY]
    doc = _embedded(res)
    # The embedded text is a YAML document of its own, which the loader's limits never saw (they measured the
    # ConfigMap, where it is one string): the same size, nesting and alias limits, before it is parsed.
    breach = yaml_bounds.check(text, text.encode(), _parser)
    if breach is not None:
        return Parsed(None, (diag.make(breach.code, f"data.mesh: {breach.message}", _at_breach(doc, breach),
                                       resource=res.origin),))
    try:
        data = _parser().load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = doc.first_line + (mark.line if mark else 0)
        message = (err.problem or str(err)).strip().splitlines()[0]
        return Parsed(None, (diag.make("MW0001", f"data.mesh: {message}", Position(doc.file, line, 1),
                                       resource=res.origin),))
    except (YAMLError, ValueError, RecursionError) as err:
        return Parsed(None, (diag.make("MW0001", f"data.mesh: cannot parse YAML: {err}".splitlines()[0],
                                       doc.position(), resource=res.origin),))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return Parsed(None, (diag.make("MW0102", "data.mesh must hold a YAML mapping (Istio's MeshConfig)",
                                       doc.position(), path="data.mesh", resource=res.origin),))
    data, unknown = _without_unknown(doc, data, res.origin)
    try:
        config = MeshConfig.model_validate(data, strict=True, by_alias=True, by_name=False)
    except pydantic.ValidationError as err:
        found = typed.structural_errors(doc, MeshConfig, (), err, res.origin)
        return Parsed(None, (*unknown, *(dataclasses.replace(d, path=f"data.mesh.{d.path}") for d in found)))
    return Parsed(config, (*unknown, *_Checks(doc, res.origin).run(config, data)))


def _parser() -> YAML:
    return YAML(typ="safe", pure=True)


def _at_breach(doc: Document, breach: yaml_bounds.Breach) -> Position:
    """Where in the file a limit was broken: a block scalar's lines stand in the file, shifted by its indentation;
    a quoted value, or a breach of the document as a whole, is the `mesh` key's."""
    if not doc.text or breach.line is None:
        return doc.position()
    first = next((line for line in doc.text.splitlines() if line.strip()), "")
    return Position(doc.file, doc.first_line + breach.line, len(first) - len(first.lstrip(" ")) + breach.column + 1)


def _embedded(res: Resource) -> Document:
    """A document for the `mesh` value: for a block scalar (`mesh: |`), its lines as they stand in the file;
    otherwise (a quoted or plain scalar) no text, so every position is the `mesh` key's line."""
    doc = res.doc
    key = res.locate(("data", KEY))
    lines = doc.text.splitlines()
    at = key.line - doc.first_line
    head = lines[at][key.column - 1:] if 0 <= at < len(lines) else ""
    after = head.partition(":")[2].strip()
    if not after.startswith(("|", ">")):
        return Document(doc.file, doc.index, key.line, res.spec.data[KEY], "", key.line)
    block: list[str] = []
    for line in lines[at + 1:]:
        if line.strip() and len(line) - len(line.lstrip(" ")) < key.column:
            break  # back at the key's indentation or less: the block has ended
        block.append(line)
    content = next((i for i, line in enumerate(block) if line.strip()), 0)
    return Document(doc.file, doc.index, key.line + 1 + content, None, "\n".join(block) + "\n", key.line + 1)


def _without_unknown(doc: Document, data: dict[str, Any], origin: str) -> tuple[dict[str, Any], list[Diagnostic]]:
    """The data without the keys meshward does not model, and a warning at each (Istio knows many more fields)."""
    try:
        MeshConfig.model_validate(data, strict=True, by_alias=True, by_name=False)
        return data, []
    except pydantic.ValidationError as err:
        extra = [introspect.clean_loc(MeshConfig, e["loc"]) for e in err.errors(include_url=False)
                 if e["type"] == "extra_forbidden"]
    if not extra:
        return data, []
    kept = copy.deepcopy(data)
    warnings = []
    for path in extra:
        parent = introspect.model_at(MeshConfig, path[:-1])
        known = introspect.aliases(parent) if parent is not None else []
        hint = introspect.suggest(str(path[-1]), known)
        message = (f'MeshConfig field "{path[-1]}" is not modeled by meshward, ignored'
                   + (f'; did you mean "{hint}"?' if hint else ""))
        warnings.append(diag.make("MW0104", message, _locate(doc, path), path=_path(path), resource=origin))
        node: Any = kept
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
    return kept, warnings


def _locate(doc: Document, path: Sequence[str | int]) -> Position:
    return positions.locate(doc, path)


def _path(path: Sequence[str | int]) -> str:
    return diag.format_path(("data", "mesh", *path))


@dataclasses.dataclass(frozen=True, slots=True)
class _Checks:
    """The rules of Istio's ValidateMeshConfig (pkg/config/validation/agent) for the modeled fields, and the
    references between them (defaultProviders names a provider; a tracer names its service)."""

    doc: Document
    origin: str

    def run(self, config: MeshConfig, data: dict[str, Any]) -> list[Diagnostic]:
        out = self._values(config)
        out += self._providers(config.extension_providers or [])
        defaults = config.default_providers
        for kind in ("tracing", "metrics", "accessLogging"):
            listed = getattr(defaults, "access_logging" if kind == "accessLogging" else kind) if defaults else None
            for i, name in enumerate(listed or []):
                provider = config.provider(name)
                if provider is None:
                    out.append(self._error(f'defaultProviders.{kind} names provider "{name}", which '
                                           "extensionProviders does not define", ("defaultProviders", kind, i)))
                elif kind == "tracing" and provider.zipkin is None and provider.opentelemetry is None:
                    out.append(self._at("MW0336", f'defaultProviders.tracing names provider "{name}", which is not '
                                        "a tracer (zipkin or opentelemetry): Pilot would trace nothing",
                                        ("defaultProviders", kind, i)))
        return out + self._not_compiled(data)

    def _not_compiled(self, data: dict[str, Any]) -> list[Diagnostic]:
        paths: list[tuple[str, ...]] = []
        for key, value in data.items():
            if key in _COMPILED_PARTS and isinstance(value, dict):
                paths += [(key, part) for part in value if part not in _COMPILED_PARTS[key]]
            elif key not in COMPILED:
                paths.append((key,))
        return [self._warning("MW0403", f"MeshConfig {'.'.join(path)} is checked but not compiled"
                              + (f": {_WHY_NOT[path[0]]}" if path[0] in _WHY_NOT else " yet (see README Limitations)"),
                              path) for path in paths]

    def _values(self, config: MeshConfig) -> list[Diagnostic]:
        out = []
        if not hosts.is_dns1123_label(config.root_namespace):
            out.append(self._error(f'rootNamespace "{config.root_namespace}" is not a namespace name',
                                   ("rootNamespace",)))
        if config.connect_timeout is not None:
            problem = fields.duration(config.connect_timeout)
            if problem is None and units.duration_ms(config.connect_timeout) > _CONNECT_TIMEOUT_MAX_MS:
                problem = f'connectTimeout "{config.connect_timeout}" must be at most 1h'  # ValidateConnectTimeout
            if problem:
                out.append(self._at("MW0202", problem, ("connectTimeout",)))
        for key in ("defaultServiceExportTo", "defaultVirtualServiceExportTo", "defaultDestinationRuleExportTo"):
            values = getattr(config, _attr(key))
            out += [self._at("MW0223", problem, (key, i)) for i, problem in hosts.export_to(values)]
        if config.locality_lb_setting is not None:
            out += [self._at("MW0217", message, ("localityLbSetting", *where))
                    for message, where in destination_rule.locality_problems(config.locality_lb_setting)]
        if config.access_log_encoding == "JSON" and config.access_log_format:
            out += self._json_format(config.access_log_format)
        return out

    def _json_format(self, text: str) -> list[Diagnostic]:
        try:
            labels = json.loads(text)
        except ValueError as err:
            return [self._error(f"accessLogFormat must be a JSON object for accessLogEncoding JSON: {err}",
                                ("accessLogFormat",))]
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            return [self._error("accessLogFormat must be a JSON object of strings for accessLogEncoding JSON",
                                ("accessLogFormat",))]
        return []

    def _providers(self, providers: Sequence[ExtensionProvider]) -> list[Diagnostic]:
        out, seen = [], set()
        for i, provider in enumerate(providers):
            if provider.name in seen:
                out.append(self._error(f'duplicate extension provider name "{provider.name}"',
                                       ("extensionProviders", i, "name")))
            seen.add(provider.name)
            kinds = [k for k in provider.model_fields_set if k != "name"]
            if len(kinds) != 1:
                out.append(self._error(f'extension provider "{provider.name}" must set exactly one provider kind',
                                       ("extensionProviders", i)))
            for kind in sorted(set(kinds) - _COMPILED_PROVIDERS):
                alias = ExtensionProvider.model_fields[kind].alias or kind
                out.append(self._warning("MW0403", f'extension provider "{provider.name}" ({alias}) is checked but '
                                         "not compiled yet (see README Limitations)",
                                         ("extensionProviders", i, alias)))
            for key in _SERVICE_PROVIDERS:
                target = getattr(provider, _attr(key))
                if target is None:
                    continue
                if not target.service:
                    out.append(self._error(f'extension provider "{provider.name}" ({key}) needs a service',
                                           ("extensionProviders", i, key)))
                if not 1 <= target.port <= 65535:
                    out.append(self._error(f'extension provider "{provider.name}" ({key}) needs a port (1-65535)',
                                           ("extensionProviders", i, key)))
                if isinstance(target, ExtAuthzGrpcProvider):
                    out += [self._error(f'extension provider "{provider.name}" ({key}): {message}',
                                        ("extensionProviders", i, key, *path))
                            for message, path in ext_authz.problems(target)]
            if provider.opentelemetry is not None:
                out += self._otlp(provider.opentelemetry, ("extensionProviders", i, "opentelemetry"))
        return out

    def _otlp(self, otel: OpenTelemetryProvider, at: tuple[str | int, ...]) -> list[Diagnostic]:
        """The exporter's settings: the HTTP path Istio's API requires, and timeouts that are durations."""
        out = []
        if otel.http is not None and not otel.http.path:
            out.append(self._error("an OpenTelemetry http exporter needs a path", (*at, "http")))
        for key, exporter in (("http", otel.http), ("grpc", otel.grpc)):
            problem = fields.duration(exporter.timeout) if exporter is not None else None
            if problem:
                out.append(self._at("MW0202", problem, (*at, key, "timeout")))
        return out

    def _error(self, message: str, path: Sequence[str | int]) -> Diagnostic:
        return self._at("MW0240", message, path)

    def _at(self, code: str, message: str, path: Sequence[str | int]) -> Diagnostic:
        return diag.make(code, message, _locate(self.doc, path), path=_path(path), resource=self.origin)

    def _warning(self, code: str, message: str, path: Sequence[str | int]) -> Diagnostic:
        return diag.make(code, message, _locate(self.doc, path), path=_path(path), resource=self.origin,
                         severity=diag.Severity.WARNING)


def _attr(key: str) -> str:
    """The model attribute of a camelCase key."""
    return "".join("_" + c.lower() if c.isupper() else c for c in key)
