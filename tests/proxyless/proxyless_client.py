"""A proxyless gRPC client, run as a subprocess by the proxyless tests.

It must be its own process: gRPC reads GRPC_XDS_BOOTSTRAP once, when its xDS client is first created, and keeps that
client (and its ADS stream) for the life of the process. argv[1] is a JSON list of calls
`{"target": "xds:///host:port", "metadata": [[key, value]], "timeout": seconds}`, made concurrently (so a call
that waits for gRPC's 15 s does-not-exist timer does not hold up the others); the outcome of each call
(`{"reply": text}` or `{"code": "UNAVAILABLE", "details": text}`) is printed as one JSON list on one line. Each
line then read from stdin is another such list of calls, answered the same way on the same channels (and so the
same ADS streams), until stdin closes; meanwhile the test can look at the server's view of the client.
"""

from __future__ import annotations

import json
import sys
import threading
from concurrent import futures
from typing import Any

import grpc

METHOD = "/meshward.test.Echo/Who"  # bytes in, bytes out: no generated code needed


_lock = threading.Lock()


def call(channels: dict[str, grpc.Channel], spec: dict[str, Any]) -> dict[str, str]:
    target = spec["target"]
    with _lock:
        if target not in channels:
            channels[target] = grpc.insecure_channel(target)
        channel = channels[target]
    stub = channel.unary_unary(METHOD)
    try:
        reply = stub(b"", timeout=float(spec.get("timeout", 10)),
                     metadata=[tuple(kv) for kv in spec.get("metadata", [])])
    except grpc.RpcError as err:
        return {"code": err.code().name, "details": err.details() or ""}
    return {"reply": reply.decode()}


def round_of(channels: dict[str, grpc.Channel], specs: list[dict[str, Any]]) -> None:
    with futures.ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
        results = list(pool.map(lambda spec: call(channels, spec), specs))
    print(json.dumps(results), flush=True)


def main() -> None:
    channels: dict[str, grpc.Channel] = {}
    round_of(channels, json.loads(sys.argv[1]))
    for line in sys.stdin:  # until the test closes stdin (or kills us)
        round_of(channels, json.loads(line))
    for channel in channels.values():
        channel.close()


if __name__ == "__main__":
    main()
