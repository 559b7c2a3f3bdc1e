"""Stage 1b: YAML documents -> typed resources (Kubernetes envelope checks, then the spec's pydantic model).

Checks the envelope (apiVersion, kind, metadata) the way the Kubernetes API server would, skips kinds meshward
does not model, and validates the spec structurally. Structural errors become MW01xx diagnostics located at the
exact field, in the camelCase path the user wrote. A document with any error produces no resource. This stage never
raises: every input either becomes a resource or a diagnostic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pydantic

from compiler import diagnostics as diag
from compiler import kinds, positions
from compiler.api import introspect
from compiler.diagnostics import Diagnostic
from compiler.load import Document
from compiler.resources import DEFAULT_NAMESPACE, Resource, parse_timestamp

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENVELOPE = ("apiVersion", "kind", "metadata", "spec", "status")
_ENVELOPE_SET = frozenset(_ENVELOPE)
# kind -> (its KindInfo, the apiVersions it is served at), for _well_formed's one dict lookup
_SERVED = {kind: (info, frozenset(info.api_versions())) for kind, info in kinds.KINDS.items()}
SPEC_REQUIRED = frozenset({"ServiceEntry", "WorkloadEntry"})  # Istio's CRDs mark spec required for these
LABEL_NAMED = frozenset({"Service", "Namespace"})  # names must be DNS-1123 labels, not subdomains


def to_resources(documents: Sequence[Document]) -> tuple[list[Resource], list[Diagnostic]]:
    """Typed resources for the documents that pass, diagnostics for all that do not."""
    return merge(document_resources(doc) for doc in documents)


def document_resources(doc: Document) -> tuple[list[Resource], list[Diagnostic]]:
    """One document's resources (several for a `kind: List`) and its own diagnostics; depends on nothing else, so
    callers may keep the result for as long as the document is unchanged."""
    fast = _well_formed(doc)
    if fast is not None:
        return [fast], []
    problems: list[Diagnostic] = []
    found = [res for item in _expand(doc, problems) if (res := _safe_one(item, problems)) is not None]
    return found, problems


def _well_formed(doc: Document) -> Resource | None:
    """The document's one resource when it is a plain, valid object of a modeled kind (nearly every document),
    checked in one pass; None sends it down the full path (`_expand`, `_one`), which accepts exactly the same
    documents the same way and says what is wrong with the others. A cold check of a large tree pays per document
    for every call and ABC isinstance the full path makes."""
    try:
        data = doc.data
        if type(data) is not dict or (data.get("kind") == "List" and "items" in data):
            return None
        api_version, kind, raw = data.get("apiVersion"), data.get("kind"), data.get("metadata")
        served = _SERVED.get(kind) if type(kind) is str else None
        if served is None or type(api_version) is not str or api_version not in served[1] or type(raw) is not dict:
            return None  # (a served apiVersion is of the kind's own group)
        info = served[0]
        name, declared = raw.get("name"), False
        namespace: Any = ""
        if info.namespaced:
            namespace = raw.get("namespace")
            declared = namespace is not None
            if namespace is None:
                namespace = DEFAULT_NAMESPACE
            elif type(namespace) is not str or len(namespace) > 63 or not _DNS1123_LABEL.match(namespace):
                return None
        labels, annotations = _plain_map(raw.get("labels")), _plain_map(raw.get("annotations"))
        if type(name) is not str or not _valid_name(name, info.kind) or labels is None or annotations is None:
            return None
        if raw.get("creationTimestamp") is not None and parse_timestamp(raw["creationTimestamp"]) is None:
            return None
        body = _plain_body(data, info)
        if body is None:
            return None
        spec = info.model.__pydantic_validator__.validate_python(body, strict=True, by_alias=True, by_name=False)
    except Exception:  # noqa: BLE001 - anything amiss (a validation error too): the full path reports it
        return None
    return Resource(kind=info.kind, api_version=api_version, name=name, namespace=namespace,
                    namespace_declared=declared, labels=labels, annotations=annotations, spec=spec, doc=doc)


def _plain_map(value: Any) -> dict[str, str] | None:
    """`_string_map` of a valid value; None for anything it would report (or not plainly a dict)."""
    if value is None:
        return {}
    if type(value) is dict and all(type(k) is str and type(v) is str for k, v in value.items()):
        return dict(value)
    return None


def _plain_body(data: dict[str, Any], info: kinds.KindInfo) -> Mapping[str, Any] | None:
    """`_body` of a document it reports nothing for; None otherwise."""
    if info.body_field is None:
        return {k: v for k, v in data.items() if k not in ("apiVersion", "kind", "metadata")}
    if info.group.endswith("istio.io") and not _ENVELOPE_SET.issuperset(data):
        return None
    spec = data.get(info.body_field)
    if spec is None:
        return None if info.kind in SPEC_REQUIRED else {}
    return spec if type(spec) is dict else None


def merge(per_document: Iterable[tuple[list[Resource], list[Diagnostic]]]) -> tuple[list[Resource], list[Diagnostic]]:
    """All documents' resources, one per (kind, namespace, name): a later definition replaces an earlier one."""
    problems: list[Diagnostic] = []
    seen: dict[tuple[str, str, str], Resource] = {}
    for found_here, problems_here in per_document:
        problems.extend(problems_here)
        for found in found_here:
            key = found.key
            first = seen.get(key)
            if first is not None:
                # As `kubectl apply` of both files and Argo CD's RepeatedResourceWarning: the later one wins.
                problems.append(found.diag("MW0011", f"{found.origin} is already defined at "
                                           f"{first.doc.file}:{first.doc.line}; this later definition replaces it",
                                           ("metadata", "name")))
            seen[key] = found
    return list(seen.values()), problems


def _safe_one(doc: Document, problems: list[Diagnostic]) -> Resource | None:
    """One document; an unexpected failure is reported as an internal error rather than raised (never a traceback
    for bad input)."""
    try:
        return _one(doc, problems)
    except Exception as err:  # noqa: BLE001 - the stage contract: report, never raise
        problems.append(diag.make("MW0404", f"cannot check this document: {type(err).__name__}: {err}",
                                  doc.position()))
        return None


def _expand(doc: Document, problems: list[Diagnostic]) -> Iterator[Document]:
    """A `kind: List` document becomes one document per item; anything else is itself."""
    data = doc.data
    if not (isinstance(data, Mapping) and data.get("kind") == "List" and "items" in data):
        yield doc
        return
    items = data.get("items")
    if not isinstance(items, list):
        problems.append(diag.make("MW0006", "List.items is not a list", positions.locate(doc, ("items",)),
                                  path="items"))
        return
    locator = positions.Locator(doc)  # the List's text parsed once for all its items
    for index, item in enumerate(items):
        yield _item_document(doc, locator, index, item)


def _item_document(doc: Document, locator: positions.Locator, index: int, item: Any) -> Document:
    """A list item as its own document, with its own text so that field positions stay right."""
    start = locator.locate(("items", index))
    end = locator.locate(("items", index + 1)) if index + 1 < len(doc.data["items"]) else None
    lines = doc.text.splitlines()[start.line - doc.first_line:(end.line - doc.first_line) if end else None]
    text = ""
    if lines and start.column > 0:
        col = start.column - 1
        head = lines[0]
        if col >= 2 and head[col - 2:col] == "- ":
            lines[0] = " " * col + head[col:]
        text = "\n".join(lines) + "\n"  # indented block YAML parses the same and keeps columns right
    return Document(doc.file, doc.index, start.line, item, text, start.line)


def _one(doc: Document, problems: list[Diagnostic]) -> Resource | None:
    data = doc.data
    if not isinstance(data, Mapping):
        problems.append(diag.make("MW0006", f"document is a {_type_name(data)}, not a Kubernetes object",
                                  doc.position()))
        return None
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        missing = "apiVersion" if not isinstance(api_version, str) or not api_version else "kind"
        problems.append(diag.make("MW0006", f"document has no {missing} (string)", doc.position()))
        return None
    info = kinds.lookup(kind)
    if info is None or kinds.group_of(api_version) != info.group:  # e.g. gateway.networking.k8s.io Gateway
        problems.append(diag.make("MW0005", f"{kind} ({api_version}) is not modeled; skipped",
                                  positions.locate(doc, ("kind",)), path="kind"))
        return None
    if api_version not in info.api_versions():
        problems.append(diag.make("MW0007", f"{kind} is not served at apiVersion {api_version!r}; use one of "
                                  f"{', '.join(info.api_versions())}", positions.locate(doc, ("apiVersion",)),
                                  path="apiVersion"))
        return None
    return _typed(doc, info, api_version, problems)


def _typed(doc: Document, info: kinds.KindInfo, api_version: str, problems: list[Diagnostic]) -> Resource | None:
    before = len(problems)
    meta = _metadata(doc, info, problems)
    body = _body(doc, info, problems)
    if meta is None or body is None or len(problems) > before:
        return None
    name, namespace, declared, labels, annotations = meta
    origin = f"{info.kind} {namespace}/{name}" if declared else f"{info.kind} {name}"
    spec = _validate_spec(doc, info, body, origin, problems)
    if spec is None:
        return None
    return Resource(kind=info.kind, api_version=api_version, name=name, namespace=namespace,
                    namespace_declared=declared, labels=labels, annotations=annotations, spec=spec, doc=doc)


_Meta = tuple[str, str, bool, dict[str, str], dict[str, str]]


def _metadata(doc: Document, info: kinds.KindInfo, problems: list[Diagnostic]) -> _Meta | None:
    raw = doc.data.get("metadata")
    if not isinstance(raw, Mapping):
        problems.append(diag.make("MW0008", "metadata is missing or not a mapping", doc.position(), path="metadata"))
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not _valid_name(name, info.kind):
        form = "DNS-1123 label" if info.kind in LABEL_NAMED else "DNS-1123 subdomain"
        problems.append(diag.make("MW0008", f"name {_show(name)} is not a {form} (lowercase letters, digits, "
                                  "'-'" + ("" if info.kind in LABEL_NAMED else ", '.'") + ")",
                                  positions.locate(doc, ("metadata", "name")), path="metadata.name"))
        return None
    namespace, declared = _namespace(doc, raw, info, problems)
    labels = _string_map(doc, raw, "labels", problems)
    annotations = _string_map(doc, raw, "annotations", problems)
    if namespace is None or labels is None or annotations is None or not _timestamp_ok(doc, raw, problems):
        return None
    return name, namespace, declared, labels, annotations


def _timestamp_ok(doc: Document, raw: Mapping[str, Any], problems: list[Diagnostic]) -> bool:
    """creationTimestamp orders VirtualServices as Pilot orders them (Resource.pilot_order): it must be a time."""
    value = raw.get("creationTimestamp")
    if value is None or parse_timestamp(value) is not None:
        return True
    problems.append(diag.make("MW0102", f"metadata.creationTimestamp {_show(value)} is not an RFC 3339 time "
                              "(e.g. 2024-01-31T12:00:00Z)", positions.locate(doc, ("metadata", "creationTimestamp")),
                              path="metadata.creationTimestamp"))
    return False


def _valid_name(name: Any, kind: str) -> bool:
    if not isinstance(name, str):
        return False
    if kind in LABEL_NAMED:
        return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))
    return len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))


def _namespace(doc: Document, raw: Mapping[str, Any], info: kinds.KindInfo,
               problems: list[Diagnostic]) -> tuple[str | None, bool]:
    if not info.namespaced:
        return "", False
    if "namespace" not in raw or raw["namespace"] is None:
        return DEFAULT_NAMESPACE, False
    value = raw["namespace"]
    if isinstance(value, str) and len(value) <= 63 and _DNS1123_LABEL.match(value):
        return value, True
    problems.append(diag.make("MW0012", f"namespace {_show(value)} is not a DNS-1123 label",
                              positions.locate(doc, ("metadata", "namespace")), path="metadata.namespace"))
    return None, True


def _string_map(doc: Document, raw: Mapping[str, Any], key: str, problems: list[Diagnostic]) -> dict[str, str] | None:
    value = raw.get(key)
    if value is None:
        return {}
    if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    problems.append(diag.make("MW0102", f"metadata.{key} must map strings to strings (quote numbers and booleans)",
                              positions.locate(doc, ("metadata", key)), path=f"metadata.{key}"))
    return None


def _body(doc: Document, info: kinds.KindInfo, problems: list[Diagnostic]) -> Mapping[str, Any] | None:
    """The mapping the kind's model validates: `spec`, or the top level minus the envelope."""
    data = doc.data
    if info.body_field is None:
        return {k: v for k, v in data.items() if k not in ("apiVersion", "kind", "metadata")}
    if info.group.endswith("istio.io"):
        for key in data:
            if key not in _ENVELOPE:
                problems.append(_unknown(doc, (), key, _ENVELOPE))
    spec = data.get(info.body_field)
    if spec is None:
        if info.kind in SPEC_REQUIRED:
            problems.append(diag.make("MW0103", f"{info.kind} requires a spec", doc.position(), path="spec"))
            return None
        return {}
    if not isinstance(spec, Mapping):
        problems.append(diag.make("MW0102", f"spec must be a mapping, got {_type_name(spec)}",
                                  positions.locate(doc, ("spec",)), path="spec"))
        return None
    return spec


def _validate_spec(doc: Document, info: kinds.KindInfo, body: Mapping[str, Any], origin: str,
                   problems: list[Diagnostic]) -> Any:
    model: type[pydantic.BaseModel] = info.model
    try:
        return model.model_validate(body, strict=True, by_alias=True, by_name=False)
    except pydantic.ValidationError as err:
        prefix = (info.body_field,) if info.body_field else ()
        problems.extend(structural_errors(doc, model, prefix, err, origin))
        return None


def structural_errors(doc: Document, model: type[pydantic.BaseModel], prefix: tuple[str | int, ...],
                      err: pydantic.ValidationError, origin: str = "") -> list[Diagnostic]:
    """pydantic errors -> MW0101/MW0102/MW0103, one per field path, located at the field."""
    out: dict[tuple[str | int, ...], Diagnostic] = {}
    for error in err.errors(include_url=False):
        loc = introspect.clean_loc(model, error["loc"])
        path = prefix + loc
        if path in out:
            continue
        out[path] = _translate(doc, model, prefix, loc, error, origin)
    return list(out.values())


def _translate(doc: Document, model: type[pydantic.BaseModel], prefix: tuple[str | int, ...], loc: tuple[str | int, ...],
               error: Any, origin: str) -> Diagnostic:
    path = prefix + loc
    kind = error["type"]
    if kind == "extra_forbidden" and loc:
        parent = introspect.model_at(model, loc[:-1])
        return _unknown(doc, prefix + loc[:-1], loc[-1], introspect.aliases(parent) if parent else (), origin)
    if kind == "missing":
        return diag.make("MW0103", f'required field "{loc[-1]}" is missing', positions.locate(doc, path),
                         path=diag.format_path(path), resource=origin)
    message = f"invalid value {_show(error.get('input'))}: {error['msg']}"
    return diag.make("MW0102", message, positions.locate(doc, path), path=diag.format_path(path), resource=origin)


def _unknown(doc: Document, parent: tuple[str | int, ...], key: Any, known: Sequence[str],
             origin: str = "") -> Diagnostic:
    path = parent + (key if isinstance(key, (str, int)) else str(key),)
    message = f'unknown field "{key}"'
    suggestion = introspect.suggest(str(key), known)
    if suggestion:
        message += f'; did you mean "{suggestion}"?'
    return diag.make("MW0101", message, positions.locate(doc, path), path=diag.format_path(path), resource=origin)


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    names = {type(None): "null", str: "string", int: "integer", float: "number", bool: "boolean", list: "list"}
    return names.get(type(value), "mapping" if isinstance(value, Mapping) else type(value).__name__)
