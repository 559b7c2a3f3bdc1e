"""Run the cases of Istio's simulation corpus (../shared/corpus/istio-simulation) through meshward and real Envoy.

A case is compiled for its proxy to a static bootstrap and run by `meshward test`'s runner (`routetest.envoys`),
which changes only addresses, in ways that leave routing alone: listeners bind loopback ports the OS picks, so all
cases' Envoys run at once although many of them listen on port 80; every cluster, and every cluster a route names
that the config does not define (a destination no registry entry defines: Pilot routes to that name and Envoy
answers 503 NC), becomes a static cluster of the same name whose endpoint is that cluster's echo backend; every
HTTP connection manager writes an access log line per call. The judge is the cluster Envoy picks, which the access
log names; no call depends on what listens on this machine (an inbound cluster's 127.0.0.1:8080), loops (without
capture an original-destination cluster's destination is Envoy's own listener) or leaves it (a DNS cluster's
lookup).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from compiler import build
from compiler.emit import bootstrap_static
from routetest import echo, envoys

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
    """One case's run: what each call reached, or why the case could not run (compile errors)."""

    seen: Mapping[str, Seen] = dataclasses.field(default_factory=dict)
    errors: tuple[str, ...] = ()  # why no call was sent: the compiler's errors (no config)


def compile_case(case: Case) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """The proxy's static bootstrap as meshward serves it, or the errors that keep it from being served."""
    result = build.build([case.directory / "mesh.yaml", case.directory / "added.yaml"])
    if not result.ok:
        return None, tuple(d.render() for d in build.errors(result))
    return bootstrap_static.static_bootstrap(build.proxy_config(result, case.node)), ()


def listeners(bootstrap: Mapping[str, Any]) -> list[tuple[str, int]]:
    return [(li["address"]["socket_address"]["address"], li["address"]["socket_address"]["port_value"])
            for li in bootstrap["static_resources"].get("listeners", [])]


@contextmanager
def started(plans: Sequence[tuple[Case, dict[str, Any]]], workdir: Path, envoy_bin: str
            ) -> Iterator[list[envoys.Proxy]]:
    """One Envoy per (case, bootstrap), in that order, all started at once and stopped at the end."""
    with echo.Echo() as backends, envoys.running([envoys.Plan(case.node, bootstrap) for case, bootstrap in plans],
                                                 workdir, backends.ports, envoy_bin) as proxies:
        yield proxies


def send_all(cases: Sequence[Case], proxies: Sequence[envoys.Proxy]) -> dict[str, dict[str, Seen]]:
    """Each case's calls, in order; the cases in parallel."""
    with futures.ThreadPoolExecutor(max_workers=8) as pool:
        done = pool.map(lambda run: (run[0].name, {c.name: send(run[1], f"{run[0].name}-{i}", c)
                                                   for i, c in enumerate(run[0].calls)}),
                        zip(cases, proxies, strict=True))
        return dict(done)


def send(proxy: envoys.Proxy, call_id: str, call: Call, deadline_s: float = 5.0) -> Seen:
    if call.port not in proxy.ports:
        return Seen(None, "", "")
    try:
        status = proxy.send(call.port, "GET", call.host, call.path, {echo.CALL_HEADER: call_id, **call.headers},
                            timeout_s=deadline_s).status
    except OSError:
        return Seen(None, "", "")
    logged = proxy.log.wait(call_id, deadline_s)
    if logged is None:
        raise AssertionError(f"no access log line for call {call_id} in {proxy.log.path}")
    return Seen(status, logged.cluster or NO_CLUSTER, logged.flags)
