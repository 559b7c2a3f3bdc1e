"""Run the cases of Istio's simulation corpus (../shared/corpus/istio-simulation) through meshward and real Envoy.

A case is compiled for its proxy to a static bootstrap, which the harness (not the product) changes in ways that
leave routing alone:
- every listener binds the case's own loopback address (127.0.0.N) instead of 127.0.0.1 or 0.0.0.0, on the same
  port, so that all cases' Envoys run at once although many of them listen on port 80;
- every HTTP connection manager logs `%UPSTREAM_CLUSTER%` per call (the call's id travels in a header);
- every cluster becomes an endpoint-less static cluster of the same name: the judge is the cluster Envoy picks,
  which the access log names whether or not an upstream answers (a 503 is expected). So no call depends on what
  listens on this machine (an inbound cluster's 127.0.0.1:8080), loops (without capture an original-destination
  cluster's destination is Envoy's own listener) or leaves it (a DNS cluster's lookup);
- a route to a cluster that the config does not define (a destination no registry entry defines: Pilot routes to
  that name and Envoy answers 503 NC, logging no cluster) gets an endpoint-less cluster of that name, so that the
  access log names the cluster the route chose, which is what Istio's test compares.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent import futures
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from compiler import build
from compiler.emit import bootstrap_static
from reconciler.ops import envoy_process

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
CALL_HEADER = "x-sim-call"
LOG_FORMAT = f"%REQ({CALL_HEADER.upper()})% %UPSTREAM_CLUSTER% %RESPONSE_CODE% %RESPONSE_FLAGS%\n"
NO_CLUSTER = "-"  # what %UPSTREAM_CLUSTER% logs when no route matched


@dataclasses.dataclass(frozen=True)
class Call:
    name: str
    protocol: str  # what the harness sends: HTTP/1.1 only
    port: int
    host: str
    path: str
    headers: Mapping[str, str]
    expect: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    directory: Path
    node: str
    calls: tuple[Call, ...]

    @classmethod
    def read(cls, directory: Path) -> Case:
        spec = json.loads((directory / "calls.json").read_text())
        calls = tuple(Call(c["name"], c.get("protocol", "http"), c["port"], c["host"], c.get("path", "/"),
                           c.get("headers") or {}, c["expect"]) for c in spec["calls"])
        return cls(directory.name, directory, spec["node"], calls)


@dataclasses.dataclass(frozen=True)
class Seen:
    """What Envoy did with one call: the status the client got and the access log's cluster and flags."""

    status: int | None  # None: the connection failed
    cluster: str
    flags: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One case's run: what each call reached, or why the case could not run (compile errors, a port taken)."""

    seen: Mapping[str, Seen] = dataclasses.field(default_factory=dict)
    errors: tuple[str, ...] = ()  # why no call was sent: the compiler's errors (no config), or Envoy failing
    skipped: str = ""


def compile_case(case: Case) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """The proxy's static bootstrap as meshward serves it, or the errors that keep it from being served."""
    result = build.build([case.directory / "mesh.yaml", case.directory / "added.yaml"])
    if not result.ok:
        return None, tuple(d.render() for d in build.errors(result))
    return bootstrap_static.static_bootstrap(build.proxy_config(result, case.node)), ()


def prepare(bootstrap: dict[str, Any], *, address: str, admin_port: int, log: Path) -> dict[str, Any]:
    """The harness's changes to a bootstrap (see the module docstring)."""
    out = json.loads(json.dumps(bootstrap))
    out["admin"]["address"]["socket_address"]["port_value"] = admin_port
    static = out["static_resources"]
    for listener in static.get("listeners", []):
        listener["address"]["socket_address"]["address"] = address
        for chain in listener.get("filter_chains", []):
            for flt in chain.get("filters", []):
                if flt["typed_config"]["@type"] == HCM:
                    flt["typed_config"]["access_log"] = [_access_log(log)]
    defined = {c["name"] for c in static.get("clusters", [])}
    static["clusters"] = [_unreachable(name) for name in sorted(defined | _routed(out))]
    return out


def _routed(bootstrap: Mapping[str, Any]) -> set[str]:
    """The clusters the inline route tables name."""
    names: set[str] = set()
    for listener in bootstrap["static_resources"].get("listeners", []):
        for chain in listener.get("filter_chains", []):
            for flt in chain.get("filters", []):
                table = flt["typed_config"].get("route_config", {})
                for vhost in table.get("virtual_hosts", []):
                    for rt in vhost.get("routes", []):
                        action = rt.get("route", {})
                        names.update([action["cluster"]] if "cluster" in action else
                                     [w["name"] for w in action.get("weighted_clusters", {}).get("clusters", [])])
    return names


def _access_log(path: Path) -> dict[str, Any]:
    return {"name": "envoy.access_loggers.file",
            "typed_config": {"@type": FILE_LOG, "path": str(path),
                             "log_format": {"text_format_source": {"inline_string": LOG_FORMAT}}}}


def _unreachable(name: str) -> dict[str, Any]:
    return {"name": name, "type": "STATIC", "connect_timeout": "1s", "load_assignment": {"cluster_name": name}}


def listeners(bootstrap: Mapping[str, Any]) -> list[tuple[str, int]]:
    return [(li["address"]["socket_address"]["address"], li["address"]["socket_address"]["port_value"])
            for li in bootstrap["static_resources"].get("listeners", [])]


def taken(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return True
    return False


@dataclasses.dataclass
class Running:
    case: Case
    address: str
    admin_port: int
    log: Path
    process: envoy_process.EnvoyProcess
    ports: tuple[int, ...]


@contextmanager
def envoys(plans: Sequence[tuple[Case, str, dict[str, Any]]], workdir: Path, envoy_bin: str
           ) -> Iterator[list[Running]]:
    """One Envoy per (case, address, bootstrap), all started at once and stopped at the end."""
    with ExitStack() as stack:
        started = []
        for case, address, bootstrap in plans:
            admin_port = envoy_process.free_port()
            log = workdir / f"{case.name}.access.log"
            config = workdir / f"{case.name}.json"
            config.write_text(json.dumps(prepare(bootstrap, address=address, admin_port=admin_port, log=log)))
            proc = stack.enter_context(envoy_process.running(
                config, log=workdir / f"{case.name}.envoy.log", envoy_bin=envoy_bin,
                extra_args=("--disable-hot-restart", "--file-flush-interval-msec", "20")))
            ports = tuple(port for _, port in listeners(bootstrap))
            started.append(Running(case, address, admin_port, log, proc, ports))
        yield started


def wait_all(running: Sequence[Running], deadline_s: float) -> dict[str, Outcome]:
    """Until every Envoy is ready and accepts connections on each of its listeners (one shared deadline). The
    cases whose Envoy is not: skipped when another process took one of their ports since it was checked, else
    failed with Envoy's log."""
    end = time.monotonic() + deadline_s
    failed: dict[str, Outcome] = {}
    for run in running:
        try:
            run.process.wait_ready(run.admin_port, deadline_s=max(end - time.monotonic(), 1.0),
                                   also=lambda run=run: all(envoy_process.port_open(run.address, p)
                                                            for p in run.ports))
        except envoy_process.EnvoyError as err:
            taken_now = "Address already in use" in str(err)
            failed[run.case.name] = (Outcome(skipped=f"a port of {run.address} was taken meanwhile")
                                     if taken_now else Outcome(errors=(f"Envoy did not start: {err}",)))
    return failed


def send_all(running: Sequence[Running]) -> dict[str, dict[str, Seen]]:
    """Each case's calls, in order; the cases in parallel."""
    with futures.ThreadPoolExecutor(max_workers=8) as pool:
        done = pool.map(lambda run: (run.case.name, {c.name: send(run, i, c) for i, c in enumerate(run.case.calls)}),
                        running)
        return dict(done)


def send(run: Running, index: int, call: Call, deadline_s: float = 5.0) -> Seen:
    call_id = f"{run.case.name}-{index}"
    conn = http.client.HTTPConnection(run.address, call.port, timeout=deadline_s)
    try:
        conn.request("GET", call.path, headers={"Host": call.host, CALL_HEADER: call_id, **call.headers})
        status: int | None = conn.getresponse().status
    except OSError:
        return Seen(None, "", "")
    finally:
        conn.close()
    return _logged(run.log, call_id, status, time.monotonic() + deadline_s)


def _logged(log: Path, call_id: str, status: int | None, end: float) -> Seen:
    while time.monotonic() < end:
        for line in log.read_text().splitlines() if log.exists() else ():
            fields = line.split(" ")
            if fields[0] == call_id:
                return Seen(status, fields[1], fields[3] if len(fields) > 3 else "")
        time.sleep(0.02)
    raise AssertionError(f"no access log line for call {call_id} in {log}")
