"""A `meshward test` run: read the tests and the policy, compile each proxy the tests need, run one Envoy per
proxy (all at once), send every test's requests through its proxy, judge them, and measure route coverage.

The proxy a test's requests leave is its `from` (a node id, a workload, or a Gateway's workload), else a sidecar
of the test file's namespace as Pilot would build it for any workload there: a WorkloadEntry without labels
(`meshward-test`, at an address of the reserved 240.0.0.0/4 range) is added to the tree for it, so the Sidecar
resources of the namespace that select every workload apply and no selector-bound one does.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent import futures
from pathlib import Path

from compiler import build, discovery, load, model
from compiler import diagnostics as diag
from compiler.diagnostics import Diagnostic
from compiler.emit import bootstrap_static
from routetest import cases, coverage, echo, envoys, judge, stats
from routetest.cases import Call, FromProxy, TestCase

DEFAULT_WORKLOAD = "meshward-test"
SIDECAR_PORT = 80  # a request whose authority names no port is sent to port 80, as a client would


@dataclasses.dataclass(frozen=True)
class CallResult:
    call: Call
    reached: str  # the VirtualService route Envoy matched, as file:line, or what it did instead
    problems: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class CaseResult:
    case: TestCase
    proxy: str  # the node id the requests left
    calls: tuple[CallResult, ...]
    problems: tuple[str, ...] = ()  # about the case as a whole (the split, a proxy that could not be reached)

    @property
    def passed(self) -> bool:
        return not self.problems and all(not c.problems for c in self.calls)


@dataclasses.dataclass
class Outcome:
    results: list[CaseResult]
    diagnostics: list[Diagnostic]  # the policy's and the test files'; an error among them means no test ran
    coverage: coverage.Coverage | None = None
    files: int = 0  # test files read
    seconds_compiling: float = 0.0  # reading the tests and the tree, building it, each proxy's bootstrap
    seconds_starting: float = 0.0  # starting the Envoys (and echo backends), until all are ready
    seconds_sending: float = 0.0  # sending the requests and judging them
    seconds_total: float = 0.0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is diag.Severity.ERROR and not d.flagged]


@dataclasses.dataclass(frozen=True)
class _Target:
    node_id: str
    port: int | None  # the gateway port; None: the port of each request's authority


def run(paths: Sequence[str | Path], tests_dir: str | Path | None = None, *, envoy_bin: str | None = None
        ) -> Outcome:
    started = time.monotonic()
    found = cases.read(cases.find_files(paths, tests_dir))
    loaded = _policy(paths, tests_dir)
    namespaces = sorted({c.namespace for c in found.cases if c.source is None})
    extra = _default_workloads(namespaces)
    result, _ = build.from_documents([*loaded.documents, *extra], found=loaded.diagnostics, files=loaded.files)
    outcome = Outcome([], [*found.diagnostics, *result.diagnostics], files=found.files)
    if not result.ok:
        return outcome
    targets: dict[int, _Target] = {}
    finder = _Finder(result, loaded.documents)
    for index, case in enumerate(found.cases):
        target = finder.target(case)
        if isinstance(target, Diagnostic):
            outcome.diagnostics.append(target)
        else:
            targets[index] = target
    if outcome.errors:
        return outcome
    routes = coverage.routes(loaded.documents)
    with tempfile.TemporaryDirectory(prefix="meshward-test-") as tmp:
        outcome.results, reached = _run_all(found.cases, targets, result, Path(tmp), envoy_bin, outcome,
                                            {r.key: r for r in routes}, started)
    outcome.coverage = coverage.Coverage(routes, frozenset(reached))
    outcome.seconds_total = time.monotonic() - started
    return outcome


def _policy(paths: Sequence[str | Path], tests_dir: str | Path | None) -> load.LoadResult:
    """The policy files: those under `paths` except the test files (and anything under `tests_dir`)."""
    if tests_dir is None:
        return load.load(paths)
    files, problems = discovery.discover(paths)
    tests = os.path.realpath(tests_dir)
    kept = [display for real, display in files
            if not os.path.realpath(real).startswith(tests + os.sep)]
    loaded = load.load(kept) if kept else load.LoadResult([], [])
    loaded.diagnostics[:0] = problems
    return loaded


def _default_workloads(namespaces: Sequence[str]) -> list[load.Document]:
    text = "".join(f"---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: "
                   f"{DEFAULT_WORKLOAD}\n  namespace: {ns}\nspec:\n  address: {_default_ip(i)}\n"
                   for i, ns in enumerate(namespaces))
    return load.load_text(text, "<meshward test>").documents if text else []


def _default_ip(index: int) -> str:
    return f"240.240.{index // 250}.{index % 250 + 1}"


class _Finder:
    """The proxy each test leaves (module docstring), looked up in the tree's proxies once per `from`."""

    def __init__(self, result: build.Build, documents: Sequence[load.Document]) -> None:
        self._result = result
        self._proxies = result.proxies()
        self._documents = documents
        self._nodes: dict[str, str] = {}  # node id -> "" when the tree has its proxy, else why not

    def target(self, case: TestCase) -> _Target | Diagnostic:
        source = case.source
        if source is None:
            proxy = next(p for p in self._proxies if (p.name, p.namespace) == (DEFAULT_WORKLOAD, case.namespace))
            return _Target(proxy.node_id, None)
        node = source if isinstance(source, str) else source.node
        if node is not None:
            if node not in self._nodes:
                self._nodes[node] = self._missing(node)
            return _unknown(case, self._nodes[node]) if self._nodes[node] else _Target(node, None)
        assert isinstance(source, FromProxy)
        if source.workload is not None:
            ns, _, name = source.workload.partition("/")
            found = ([p for p in self._proxies if (p.namespace, p.name) == (ns, name)]
                     or [p for p in self._proxies if p.namespace == ns and self._controller(p) == name])
            return _Target(found[0].node_id, None) if found else _unknown(case, "the tree has no such workload")
        ns, _, name = (source.gateway or "").partition("/")
        selector = _gateway_selector(self._documents, ns, name)
        if selector is None:
            return _unknown(case, "the tree has no such Gateway")
        routers = [p for p in self._proxies if p.kind is model.ProxyKind.ROUTER
                   and selector.items() <= p.label_map().items()]
        if not routers:
            return _unknown(case, f"no workload runs Gateway {source.gateway} (none has the labels {selector})")
        return _Target(routers[0].node_id, source.port or SIDECAR_PORT)

    def _controller(self, proxy: model.Proxy) -> str:
        """The Deployment, StatefulSet, DaemonSet or ReplicaSet whose pod the proxy is by its name, or ""."""
        mesh = self._result.model
        found = mesh.kube.controller(proxy.namespace, proxy.name) if mesh is not None else None
        return found.name if found is not None else ""

    def _missing(self, node: str) -> str:
        try:
            build.describe(self._result, node)
        except LookupError as err:  # InvalidNodeId is one
            return str(err)
        return ""


def _gateway_selector(documents: Sequence[load.Document], namespace: str, name: str) -> dict[str, str] | None:
    for doc in documents:
        data = doc.data
        if isinstance(data, dict) and data.get("kind") == "Gateway" and \
                str(data.get("apiVersion", "")).startswith("networking.istio.io/"):
            meta = data.get("metadata") or {}
            if (meta.get("namespace", "default"), meta.get("name")) == (namespace, name):
                return dict((data.get("spec") or {}).get("selector") or {})
    return None


def _unknown(case: TestCase, why: str) -> Diagnostic:
    return diag.make("MW0503", f"test {case.name!r} leaves {cases.proxy_source(case.source)}: {why}", case.position)


def _run_all(all_cases: Sequence[TestCase], targets: Mapping[int, _Target], result: build.Build, workdir: Path,
             envoy_bin: str | None, outcome: Outcome, where: Mapping[judge.RouteKey, coverage.Route], started: float
             ) -> tuple[list[CaseResult], set[judge.RouteKey]]:
    by_node: dict[str, list[int]] = collections.defaultdict(list)
    for index, target in targets.items():
        by_node[target.node_id].append(index)
    configs = {node: build.proxy_config(result, node) for node in by_node}
    plans = [envoys.Plan(node, bootstrap_static.static_bootstrap(cfg)) for node, cfg in configs.items()]
    begun = time.monotonic()
    outcome.seconds_compiling = begun - started
    with echo.Echo() as backends, envoys.running(plans, workdir, backends.ports, envoy_bin) as proxies:
        outcome.seconds_starting = time.monotonic() - begun
        begun = time.monotonic()
        runners = [_ProxyRunner(proxy, judge.Proxy.of(configs[proxy.node_id]), backends, where) for proxy in proxies]
        with futures.ThreadPoolExecutor(max_workers=min(len(runners), 8) or 1) as pool:
            done = list(pool.map(lambda r: r.run([(i, all_cases[i], targets[i]) for i in by_node[r.proxy.node_id]]),
                                 runners))
        outcome.seconds_sending = time.monotonic() - begun
    results = {i: case_result for finished in done for i, case_result in finished.items()}
    reached = set().union(*(r.reached for r in runners))
    return [results[i] for i in sorted(results)], reached


@dataclasses.dataclass(frozen=True)
class _Sent:
    """A request sent and not judged yet (its access log line is read once all of the proxy's requests are out:
    Envoy writes the log every few milliseconds, which waiting after each request would add to each request)."""

    call: Call
    call_id: str
    response: envoys.Response | None  # None: not sent, `problem` says why
    received: Sequence[echo.Received]
    retried: bool = False  # the same request was sent again with the retry status (`call_id`-retry)
    problem: str = ""


class _ProxyRunner:
    """The cases of one proxy, one request at a time over its Envoy's kept-alive connections."""

    def __init__(self, proxy: envoys.Proxy, view: judge.Proxy, backends: echo.Echo,
                 where: Mapping[judge.RouteKey, coverage.Route]) -> None:
        self.proxy = proxy
        self.where = where
        self.view = view
        self.backends = backends
        self.reached: set[judge.RouteKey] = set()

    def run(self, work: Sequence[tuple[int, TestCase, _Target]]) -> dict[int, CaseResult]:
        sent = [[self._send_call(f"{index}-{j}", case, call, target) for j, call in enumerate(case.calls())]
                for index, case, target in work]
        return {index: self._case(index, case, target, calls) for (index, case, target), calls in zip(
            work, sent, strict=True)}

    def _case(self, index: int, case: TestCase, target: _Target, sent: Sequence[_Sent]) -> CaseResult:
        calls = tuple(self._judged(case, s) for s in sent)
        problems: tuple[str, ...] = ()
        if case.spec.weights is not None and all(not c.problems for c in calls):
            problems = tuple(self._split(index, case, case.calls()[0], target))
        return CaseResult(case, self.proxy.node_id, calls, problems)

    def _port(self, call: Call, target: _Target) -> int:
        if target.port is not None:
            return target.port
        _, sep, port = call.authority.rpartition(":")
        return int(port) if sep and port.isdigit() else SIDECAR_PORT

    def _send(self, call_id: str, call: Call, port: int, extra: Mapping[str, str] = {}) -> envoys.Response:
        return self.proxy.send(port, call.method, call.authority, call.uri,
                               {**dict(call.headers), echo.CALL_HEADER: call_id, **extra})

    def _send_call(self, call_id: str, case: TestCase, call: Call, target: _Target) -> _Sent:
        port = self._port(call, target)
        if port not in self.proxy.ports:
            why = (f"the proxy's listener on port {port} terminates TLS, which meshward test does not run (README, "
                   "Limitations)" if port in self.proxy.tls_ports else f"the proxy has no listener on port {port}")
            return _Sent(call, call_id, None, (), problem=why)
        try:
            response = self._send(call_id, call, port)
            # the routed backend answered before the client got its response; only a mirrored copy may come later
            received = (self.backends.wait(call_id, 2, MIRROR_WAIT_S) if case.spec.mirror is not None
                        else self.backends.received(call_id))
            if case.spec.retries is not None:
                self._send(call_id + "-retry", call, port, {echo.STATUS_HEADER: str(case.spec.retries.status)})
        except (OSError, http.client.HTTPException) as err:
            return _Sent(call, call_id, None, (), problem=f"the request failed: {err!r}")
        finally:
            self.backends.forget([call_id, call_id + "-retry"])
        return _Sent(call, call_id, response, received, case.spec.retries is not None)

    def _judged(self, case: TestCase, sent: _Sent) -> CallResult:
        if sent.response is None:
            return CallResult(sent.call, "", (sent.problem,))
        logged = self.proxy.log.wait(sent.call_id)
        retried = self.proxy.log.wait(sent.call_id + "-retry") if sent.retried else None
        key = judge.route_key(logged) if logged is not None else None
        if key is not None:
            self.reached.add(key)
        seen = judge.Seen(sent.response, logged, sent.received, retried)
        return CallResult(sent.call, _reached(logged, self.where),
                          tuple(judge.problems(case.spec, seen, self.view, case.namespace)))

    def _split(self, index: int, case: TestCase, call: Call, target: _Target) -> list[str]:
        """The first request sent again and again; each destination's count within its accepted range."""
        want = case.spec.weights
        routes = case.spec.route or []
        assert want is not None
        weights = [r.weight or 0 for r in routes]
        shares = [w / sum(weights) for w in weights] if sum(weights) else [1 / len(routes)] * len(routes)
        n = want.requests or stats.requests_needed(shares, want.tolerance)
        port = self._port(call, target)
        picked: collections.Counter[str] = collections.Counter()
        for k in range(n):
            call_id = f"{index}-split-{k}"
            self._send(call_id, call, port)
            got = [r.cluster for r in self.backends.received(call_id) if not judge.is_shadow(r)]
            picked[got[0] if got else ""] += 1
            self.backends.forget([call_id])
        problems = []
        for route, share, (lo, hi) in zip(routes, shares, stats.bounds(n, shares), strict=True):
            count = sum(c for cluster, c in picked.items()
                        if judge.matches(route.destination, cluster, self.view, case.namespace))
            if not lo <= count <= hi:
                problems.append(f"split: {route.destination.host}"
                                f"{' subset ' + route.destination.subset if route.destination.subset else ''} got "
                                f"{count} of {n} requests, expected {lo}..{hi} for weight {share:.0%}")
        return problems


MIRROR_WAIT_S = 2.0  # how long a mirrored copy may arrive after the response


def _reached(logged: envoys.Logged | None, where: Mapping[judge.RouteKey, coverage.Route]) -> str:
    if logged is None:
        return "nothing logged"
    key = judge.route_key(logged)
    if key is not None:
        return str(where[key]) if key in where else f"{key[0]}:{key[1]} VirtualService route {key[2]}"
    if logged.route:
        return f"route {logged.route!r} (no VirtualService)"
    return "no route" if "NR" in logged.flags.split(",") else "no VirtualService route"
