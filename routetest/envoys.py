"""One real Envoy per proxy the tests need, on a proxy's compiled static bootstrap with only its addresses rebound.

What changes, and why it leaves routing alone:
- each listener binds 127.0.0.1 on a port the OS picks (port 0, read back from the admin's /listeners; the admin
  too, through --admin-address-path) instead of its address, with `bind_to_port` on (captured sidecar listeners
  leave it off): requests reach it directly with the Host the test gives, no root is needed for port 80, and no
  port is guessed. A listener that terminates TLS is left out (its certificates are not on this machine);
- every cluster, and every cluster a route or mirror names without the config defining it (Pilot routes to it and
  Envoy answers 503), becomes a static cluster of the same name whose one endpoint is that cluster's echo backend
  (`routetest.echo`): the cluster Envoy picks is the backend that answers;
- every HTTP connection manager writes a JSON access log line per request: the call's id, `%ROUTE_NAME%`, the
  route's meshward metadata (VirtualService, file, line, index in spec.http), the upstream cluster, the status,
  the response flags and the number of upstream attempts.
The route tables themselves are the compiled ones, byte for byte.
"""

from __future__ import annotations

import dataclasses
import functools
import http.client
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from reconciler.ops import envoy_process
from routetest.echo import CALL_HEADER

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
LOG_FIELDS = {"call": f"%REQ({CALL_HEADER})%", "route": "%ROUTE_NAME%", "source": "%METADATA(ROUTE:meshward)%",
              "cluster": "%UPSTREAM_CLUSTER%", "code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%",
              "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%"}
READY_DEADLINE_S = 30.0
WILDCARDS = ("0.0.0.0", "::")


@dataclasses.dataclass(frozen=True)
class Logged:
    """Envoy's access log line of one call."""

    route: str  # %ROUTE_NAME%: the VirtualService route's name ("" when unnamed), "default", ...
    source: Mapping[str, Any]  # the route's meshward metadata (empty for a route no policy made)
    cluster: str  # "" when no cluster was picked (no route, a redirect, a direct response)
    code: int
    flags: str  # "" or Envoy's response flags (NR, FI, DI, UF, ...)
    attempts: int


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ","
    body: bytes


@dataclasses.dataclass
class Plan:
    """What to start for one proxy: its node id and its static bootstrap as compiled (`running` rebinds it in
    place)."""

    node_id: str
    bootstrap: dict[str, Any]


def prepare(out: dict[str, Any], *, access_log: Path,
            backends: Callable[[Sequence[str]], Mapping[str, int]]) -> tuple[dict[str, int], frozenset[int]]:
    """Make the bootstrap `out` (a JSON-ready dict, changed in place: copying twenty proxies' configs took half a
    second) what the test runs (module docstring). Returns each kept listener's name -> its port in the config,
    the listeners of a wildcard address last: where a port has several (a TCP service's VIP listener beside the
    0.0.0.0 one of HTTP), a request for the port goes to the wildcard one, as a client's would; and the ports of
    the listeners left out because they terminate TLS."""
    out["admin"]["address"]["socket_address"].update(address="127.0.0.1", port_value=0)
    static = out["static_resources"]
    found: list[tuple[bool, str, int]] = []
    kept, tls = [], set()
    for listener in static.get("listeners", []):
        chains = listener.get("filter_chains", [])
        if any("transport_socket" in chain for chain in chains):
            tls.add(listener["address"]["socket_address"]["port_value"])
            continue
        address = listener["address"]["socket_address"]
        found.append((address["address"] in WILDCARDS, listener["name"], address["port_value"]))
        address.update(address="127.0.0.1", port_value=0)
        listener.pop("bind_to_port", None)
        for flt in (f for chain in chains for f in chain.get("filters", [])):
            if flt["typed_config"]["@type"] == HCM:
                flt["typed_config"]["access_log"] = [_access_log(access_log)]
        kept.append(listener)
    static["listeners"] = kept
    names = sorted({c["name"] for c in static.get("clusters", [])} | routed_clusters(out))
    echo = backends(names)
    static["clusters"] = [_static(name, echo[name]) for name in names]
    return {name: port for _, name, port in sorted(found, key=lambda f: f[0])}, frozenset(tls)


def routed_clusters(bootstrap: Mapping[str, Any]) -> set[str]:
    """The clusters the inline route tables name (routes and mirrors)."""
    names: set[str] = set()
    for listener in bootstrap["static_resources"].get("listeners", []):
        for flt in (f for chain in listener.get("filter_chains", []) for f in chain.get("filters", [])):
            for vhost in flt["typed_config"].get("route_config", {}).get("virtual_hosts", []):
                for action in (rt.get("route", {}) for rt in vhost.get("routes", [])):
                    if "cluster" in action:
                        names.add(action["cluster"])
                    names.update(w["name"] for w in action.get("weighted_clusters", {}).get("clusters", []))
                    names.update(m["cluster"] for m in action.get("request_mirror_policies", []))
    return names


def _access_log(path: Path) -> dict[str, Any]:
    return {"name": "envoy.access_loggers.file",
            "typed_config": {"@type": FILE_LOG, "path": str(path),
                             "log_format": {"json_format": LOG_FIELDS}}}


def _static(name: str, port: int) -> dict[str, Any]:
    endpoint = {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
    return {"name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [endpoint]}]}}


class AccessLog:
    """An Envoy's access log, read as it grows, lines indexed by call id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._lines: dict[str, Logged] = {}
        self._lock = threading.Lock()

    def wait(self, call_id: str, deadline_s: float = 5.0) -> Logged | None:
        end = time.monotonic() + deadline_s
        while True:
            with self._lock:
                self._read()
                found = self._lines.pop(call_id, None)
            if found is not None or time.monotonic() > end:
                return found
            time.sleep(0.005)

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        for raw in complete:
            entry = json.loads(raw)
            self._lines[str(entry.get("call", ""))] = Logged(
                str(entry.get("route") or ""), entry.get("source") or {}, _text(entry.get("cluster")),
                int(entry.get("code") or 0), _text(entry.get("flags")), int(entry.get("attempts") or 0))


def _text(value: object) -> str:
    return "" if value in (None, "-") else str(value)


@dataclasses.dataclass
class Proxy:
    """A running Envoy of one proxy: its listeners' ports and its access log."""

    node_id: str
    log: AccessLog
    process: envoy_process.EnvoyProcess
    admin_path: Path  # where Envoy writes its admin address
    listeners: dict[str, int]  # listener name -> its port in the config
    tls_ports: frozenset[int]  # the config's ports whose listeners terminate TLS, not run
    ports: dict[int, int] = dataclasses.field(default_factory=dict)  # config port -> bound port, once ready
    _connections: dict[int, http.client.HTTPConnection] = dataclasses.field(default_factory=dict)

    def wait_ready(self, deadline_s: float) -> None:
        """Until the admin answers ready and every listener is bound (`ports` then filled in); EnvoyError on exit
        or timeout."""
        end = time.monotonic() + deadline_s
        while not self.admin_path.exists() or not self.admin_path.read_text().strip():
            if self.process.proc.poll() is not None:
                raise envoy_process.EnvoyError(f"envoy exited with {self.process.proc.returncode}:\n"
                                               f"{self.process.log_tail()}")
            if time.monotonic() > end:
                raise envoy_process.EnvoyError(f"envoy bound no admin port within {deadline_s}s:\n"
                                               f"{self.process.log_tail()}")
            time.sleep(0.05)
        admin_port = int(self.admin_path.read_text().strip().rpartition(":")[2])
        self.process.wait_ready(admin_port, deadline_s=max(end - time.monotonic(), 0.5),
                                also=functools.partial(self._bound, admin_port))

    def _bound(self, admin_port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/listeners?format=json", timeout=2) as resp:
                statuses = json.load(resp).get("listener_statuses", [])
        except OSError:
            return False
        bound = {s["name"]: s["local_address"]["socket_address"].get("port_value", 0) for s in statuses}
        if any(not bound.get(name) for name in self.listeners):
            return False
        self.ports = {port: bound[name] for name, port in self.listeners.items()}
        return True

    def send(self, port: int, method: str, authority: str, uri: str, headers: Mapping[str, str],
             *, timeout_s: float = 15.0) -> Response:
        """One request on the listener of `port`, over a kept-alive connection (a new one after an error)."""
        bound = self.ports[port]
        for attempt in (0, 1):
            conn = self._connections.get(bound)
            if conn is None:
                conn = self._connections[bound] = http.client.HTTPConnection("127.0.0.1", bound, timeout=timeout_s)
            try:
                conn.request(method, uri, headers={"Host": authority, **headers})
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                del self._connections[bound]
                if attempt:
                    raise
                continue
            joined: dict[str, str] = {}
            for key, value in resp.getheaders():
                name = key.lower()
                joined[name] = f"{joined[name]},{value}" if name in joined else value
            if resp.will_close:
                conn.close()
                del self._connections[bound]
            return Response(resp.status, joined, body)
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()


@contextmanager
def running(plans: Sequence[Plan], workdir: Path, backends: Callable[[Sequence[str]], Mapping[str, int]],
            envoy_bin: str | None = None) -> Iterator[list[Proxy]]:
    """An Envoy per plan (in the plans' order), all started at once, ready (every listener bound) before the block
    runs, and stopped when it ends, however it ends. EnvoyError names the proxy whose Envoy did not start."""
    with ExitStack() as stack:
        proxies: list[Proxy] = []
        for index, plan in enumerate(plans):
            log = workdir / f"proxy-{index}.access.log"
            listeners, tls_ports = prepare(plan.bootstrap, access_log=log, backends=backends)
            path, admin = workdir / f"proxy-{index}.json", workdir / f"proxy-{index}.admin"
            path.write_text(json.dumps(plan.bootstrap))
            # one worker thread: a test's requests come one at a time, and twenty Envoys start faster with fewer
            process = stack.enter_context(envoy_process.running(
                path, log=workdir / f"proxy-{index}.envoy.log", envoy_bin=envoy_bin,
                extra_args=("--disable-hot-restart", "--file-flush-interval-msec", "10", "--concurrency", "1",
                            "--admin-address-path", str(admin))))
            proxies.append(Proxy(plan.node_id, AccessLog(log), process, admin, listeners, tls_ports))
            stack.callback(proxies[-1].close)
        end = time.monotonic() + READY_DEADLINE_S
        for proxy in proxies:
            try:
                proxy.wait_ready(max(end - time.monotonic(), 1.0))
            except envoy_process.EnvoyError as err:
                raise envoy_process.EnvoyError(f"{proxy.node_id}: {err}") from None
        yield proxies
