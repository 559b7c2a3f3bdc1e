"""Simulated Envoys for the CA benchmark's SDS phase (`bench/ca.py`): a protocol client, not Envoy. One process
opens, for each agent socket it is given, one gRPC channel over the Unix socket and one SotW StreamSecrets stream per
secret, `default` and `ROOTCA`, as Envoy does for a cluster using ISTIO_MUTUAL (one SDS subscription per secret
name). Each stream sends its request, waits for the secret, decodes it, checks it is the kind asked for, and ACKs it
with the response's version and nonce (xds_protocol.rst, "ACK/NACK and resource type instance version").

Run as `python bench/sds_clients.py SOCKET_DIR COUNT DEADLINE_S` (sockets `SOCKET_DIR/0.sock` ...): it prints
`ready` once every channel is connected and every first request written, then, when every stream has answered or
the deadline passed, one JSON line: streams, streams ACKed, the first reasons of those that NACKed or failed, and
the CLOCK_MONOTONIC time (shared by the processes of one machine) of the last ACK.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import grpc
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
NAMES = ("default", "ROOTCA")


def _check(name: str, response: discovery_pb2.DiscoveryResponse) -> str | None:
    """Why Envoy would NACK this response, or None."""
    if response.type_url != SECRET_TYPE or len(response.resources) != 1:
        return f"{name}: type {response.type_url}, {len(response.resources)} resources"
    secret = secret_pb2.Secret.FromString(response.resources[0].value)
    kind = "tls_certificate" if name == "default" else "validation_context"
    if secret.name != name or not secret.HasField(kind):
        return f"{name}: got secret {secret.name!r} without {kind}"
    return None


async def _ack(call: grpc.aio.StreamStreamCall[discovery_pb2.DiscoveryRequest, discovery_pb2.DiscoveryResponse],
               request: discovery_pb2.DiscoveryRequest, acked: asyncio.Queue[tuple[float, str | None]]) -> None:
    """Wait for the secret `request` asked for, and ACK it (NACK it if Envoy would); a failed stream is reported."""
    name = request.resource_names[0]
    try:
        response = await call.read()
        if response is grpc.aio.EOF:
            raise ValueError("stream closed before a response")
        problem = _check(name, response)
        request.version_info, request.response_nonce = response.version_info, response.nonce
        if problem:
            request.error_detail.message = problem  # a NACK, as Envoy sends one
        await call.write(request)
    except (grpc.aio.AioRpcError, ValueError) as err:  # ValueError: the secret does not decode
        problem = f"{name}: {err}"
    await acked.put((time.monotonic(), problem))


async def run(sockets: list[Path], deadline: float) -> dict[str, object]:
    channels = [grpc.aio.insecure_channel(f"unix:{path}") for path in sockets]
    await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)), 60)
    streams = [(sds_pb2_grpc.SecretDiscoveryServiceStub(channel).StreamSecrets(), discovery_pb2.DiscoveryRequest(
        node={"id": f"sidecar~127.0.0.1~b{i}.shop~shop.svc.cluster.local"}, resource_names=[name],
        type_url=SECRET_TYPE)) for i, channel in enumerate(channels) for name in NAMES]
    await asyncio.gather(*(call.write(request) for call, request in streams))
    print("ready", flush=True)
    acked: asyncio.Queue[tuple[float, str | None]] = asyncio.Queue()
    tasks = [asyncio.create_task(_ack(call, request, acked)) for call, request in streams]
    last, failed, answered = 0.0, [], 0
    try:
        async with asyncio.timeout(deadline):
            while answered < len(streams):
                when, problem = await acked.get()
                answered, last = answered + 1, max(last, when)
                failed += [problem] if problem else []
    except TimeoutError:
        pass
    for call, _ in streams:
        call.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(c.close() for c in channels))
    return {"streams": len(streams), "acked": answered - len(failed), "failed": failed[:5], "last_ack": last}


def main() -> None:
    directory, count, deadline = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(run([directory / f"{i}.sock" for i in range(count)], deadline))), flush=True)


if __name__ == "__main__":
    main()
