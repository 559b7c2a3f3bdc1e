"""Test files -> test cases, each at its file and line; a bad file -> located diagnostics, never an exception.

The format is istio-config-validator's (`testCases[]`: `description`, `wantMatch`, `request` with lists of
`authority`, `method`, `uri` and a `headers` map, every combination one request; `route[]` of Istio's
HTTPRouteDestination), read as it is, so its users can point meshward at their tests. meshward adds, in the same
files: `namespace` (where the default proxy runs and short host names resolve), `from` (the proxy the requests
leave), and expectations beyond the destination (`redirect`, `directResponse`, `rewrite`, `headers`, `fault`,
`timeout`, `retries`, `mirror`, `weights`). Deviation: an omitted `wantMatch` means true (in the Go tool it means
false, which makes a test pass when its expectation is wrong).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pydantic
from pydantic import Field

from compiler import diagnostics as diag
from compiler import discovery, load, typed, units
from compiler.api.base import ApiModel, UInt32
from compiler.api.virtual_service import Destination, Headers, HTTPRouteDestination
from compiler.diagnostics import Diagnostic, Position
from routetest import lines, stats

DEFAULT_NAMESPACE = "default"
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110's token: methods and header names
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # what no header value or authority may hold


class Request(ApiModel):
    authority: list[str] = Field(min_length=1)
    method: list[str] = Field(default=["GET"], min_length=1)  # the Go tool requires it; GET when omitted here
    uri: list[str] = Field(min_length=1)
    headers: dict[str, str] | None = None
    scheme: str | None = None  # the request's :scheme (http unless given)


class FromProxy(ApiModel):
    """The proxy the requests leave: exactly one of a node id, a workload or a Gateway (with the port the request
    arrives on)."""

    node: str | None = None
    workload: str | None = None  # NAMESPACE/NAME of a WorkloadEntry, Pod, endpoint or Deployment (StatefulSet...)
    gateway: str | None = None  # NAMESPACE/NAME of a Gateway: the requests arrive at a workload it selects
    port: UInt32 | None = None  # the gateway port (default 80)


class RedirectExpect(ApiModel):
    """meshward's `status` and `location`, or the keys of Istio's HTTPRedirect the Go tool takes."""

    status: UInt32 | None = None
    location: str | None = None  # the whole Location header
    redirect_code: UInt32 | None = None
    uri: str | None = None  # the Location's path
    authority: str | None = None  # the Location's host


class DirectResponseExpect(ApiModel):
    status: UInt32
    body: str | None = None


class RewriteExpect(ApiModel):
    """The path (`uri` in Istio's HTTPRewrite) and authority the backend receives."""

    uri: str | None = None
    path: str | None = None
    authority: str | None = None


class AbortExpect(ApiModel):
    http_status: UInt32
    percentage: dict[str, float] | None = None  # accepted for the Go tool's files; the abort is expected every time


class DelayExpect(ApiModel):
    fixed_delay: str | None = None
    percentage: dict[str, float] | None = None


class FaultExpect(ApiModel):
    abort: AbortExpect | None = None
    delay: DelayExpect | None = None


class RetriesExpect(ApiModel):
    """`attempts` retries after a first try that the backend answers with `status`."""

    attempts: UInt32
    status: int = Field(default=503, ge=200, le=599)


class WeightsExpect(ApiModel):
    """Measure the split of `route[]`'s weights: by default over as many requests as it takes to tell it from a
    split whose shares are `tolerance` off (routetest.stats)."""

    requests: int | None = Field(default=None, ge=50, le=100_000)
    tolerance: float = Field(default=stats.DEFAULT_TOLERANCE, ge=0.02, le=0.5)


class TestCaseSpec(ApiModel):
    description: str
    want_match: bool = True
    request: Request
    route: list[HTTPRouteDestination] | None = None
    from_: str | FromProxy | None = Field(default=None, alias="from")
    delegate: dict[str, str] | None = None  # the Go tool's: the delegate VirtualService (name, namespace) reached
    redirect: RedirectExpect | None = None
    direct_response: DirectResponseExpect | None = None
    rewrite: RewriteExpect | None = None
    headers: Headers | None = None
    fault: FaultExpect | None = None
    timeout: str | None = None
    retries: RetriesExpect | None = None
    mirror: Destination | None = None
    weights: WeightsExpect | None = None


class TestFileSpec(ApiModel):
    """A test document; each case is checked on its own (TestCaseSpec), so one bad case hides no other."""

    test_cases: list[dict[str, Any]]
    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    from_: str | FromProxy | None = Field(default=None, alias="from")


@dataclasses.dataclass(frozen=True)
class Call:
    """One request of a test case: one combination of its lists."""

    authority: str
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return f"{self.method} {self.authority}{self.uri}"


@dataclasses.dataclass(frozen=True)
class TestCase:
    spec: TestCaseSpec
    position: Position
    namespace: str
    source: str | FromProxy | None  # `from`, the case's or its file's

    @property
    def name(self) -> str:
        return self.spec.description

    def calls(self) -> list[Call]:
        req = self.spec.request
        # HTTP/1.1 carries no :scheme: Envoy takes it from x-forwarded-proto, as behind a TLS-terminating balancer
        scheme = {"x-forwarded-proto": req.scheme} if req.scheme is not None else {}
        headers = tuple(sorted({**(req.headers or {}), **scheme}.items()))
        return [Call(a, m, u, headers) for u, a, m in itertools.product(req.uri, req.authority, req.method)]


@dataclasses.dataclass
class Found:
    cases: list[TestCase]
    diagnostics: list[Diagnostic]
    files: int


def find_files(paths: Sequence[str | Path], tests_dir: str | Path | None) -> list[Path]:
    """The test files: every YAML file under `tests_dir` when given, else the `*_test.yaml` / `*_test.yml` files
    under `paths`."""
    if tests_dir is not None:
        return sorted(p for p in Path(tests_dir).rglob("*") if p.suffix in discovery.YAML_SUFFIXES and p.is_file()
                      and not any(part.startswith(".") for part in p.relative_to(tests_dir).parts))
    out: list[Path] = []
    for raw in paths:
        root = Path(raw)
        found = [root] if root.is_file() else root.rglob("*") if root.is_dir() else []
        out.extend(p for p in found if p.name.endswith(discovery.TEST_SUFFIXES) and p.is_file())
    return sorted(set(out))


def read(files: Sequence[Path]) -> Found:
    cases: list[TestCase] = []
    problems: list[Diagnostic] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            problems.append(diag.make("MW0501", f"cannot read the test file: {err}", Position(str(path))))
            continue
        loaded = load.load_text(text, str(path))
        problems.extend(loaded.diagnostics)
        for doc in loaded.documents:
            cases.extend(_cases(doc, problems))
    return Found(cases, problems, len(files))


def _cases(doc: load.Document, problems: list[Diagnostic]) -> Iterator[TestCase]:
    data, key = doc.data, "testCases"
    if isinstance(data, dict) and "TestCases" in data and "testCases" not in data:
        key = "TestCases"  # as the Go tool's own fixtures write it (Go's JSON decoding ignores case)
        data = {("testCases" if k == key else k): v for k, v in data.items()}
    if not isinstance(data, dict) or "testCases" not in data:
        problems.append(diag.make("MW0501", "not a routing test: a test document holds `testCases`",
                                  doc.position()))
        return
    try:
        spec = TestFileSpec.model_validate(data, strict=True, by_alias=True, by_name=False)
    except pydantic.ValidationError as err:
        problems.extend(typed.structural_errors(doc, TestFileSpec, (), err))
        return
    locator = lines.Lines(doc)
    for i, raw in enumerate(spec.test_cases):
        try:
            case = TestCaseSpec.model_validate(raw, strict=True, by_alias=True, by_name=False)
        except pydantic.ValidationError as err:
            problems.extend(typed.structural_errors(doc, TestCaseSpec, (key, i), err))
            continue
        bad = _semantic_problems(case)
        if bad:
            problems.extend(diag.make("MW0502", message, locator.locate((key, i, *path)), path=diag.format_path(
                ("testCases", i, *path))) for path, message in bad)
            continue
        yield TestCase(case, locator.locate((key, i)), spec.namespace,
                       case.from_ if case.from_ is not None else spec.from_)


def _semantic_problems(case: TestCaseSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """What the schema cannot say: URIs that are paths, one `from`, a weighted route to measure, durations."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    req = case.request
    not_token = "is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
    out.extend((("request", "method", j), f"{m!r} {not_token}") for j, m in enumerate(req.method)
               if not _TOKEN.match(m))
    out.extend((("request", "authority", j), f"{a!r} is empty or holds a control character")
               for j, a in enumerate(req.authority) if not a or _CONTROL.search(a))
    for name, value in (req.headers or {}).items():
        if not _TOKEN.match(name):
            out.append((("request", "headers", name), f"header name {name!r} {not_token}"))
        elif _CONTROL.search(value):
            out.append((("request", "headers", name), f"header {name}'s value {value!r} holds a control character"))
    for j, uri in enumerate(case.request.uri):
        parsed = urllib.parse.urlsplit(uri)
        if not uri.startswith("/") or parsed.scheme or parsed.netloc or any(c in uri for c in " \r\n"):
            out.append((("request", "uri", j), f"{uri!r} is not a request path (it starts with /, no spaces)"))
    if isinstance(case.from_, FromProxy):
        chosen = [k for k in ("node", "workload", "gateway") if getattr(case.from_, k)]
        if len(chosen) != 1:
            out.append((("from",), "give exactly one of node, workload or gateway"))
        elif chosen[0] != "node" and "/" not in (getattr(case.from_, chosen[0]) or ""):
            out.append((("from", chosen[0]), f"{chosen[0]} is NAMESPACE/NAME"))
    if case.weights is not None and (not case.route or len(case.route) < 2):
        out.append((("weights",), "a split is measured against `route` with two destinations or more"))
    if case.timeout is not None and units.parse_duration_ms(case.timeout) is None:
        out.append((("timeout",), f"{case.timeout!r} is not a duration such as 2s or 500ms"))
    return out


def proxy_source(value: Any) -> str:
    """How a `from` reads in messages."""
    if value is None:
        return "the namespace's sidecar"
    if isinstance(value, str):
        return value
    return next(f"{k} {getattr(value, k)}" for k in ("node", "workload", "gateway") if getattr(value, k))
