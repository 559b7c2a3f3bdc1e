"""The agent's side of Istio's certificate API: one CreateCertificate call over TLS, the CA verified with the root
the agent was given (`--ca-root`) and the bearer token in the `authorization` metadata, as Istio's agent sends it
(security/pkg/nodeagent/caclient/providers/citadel/client.go)."""

from __future__ import annotations

import grpc

from reconciler.identity import istio_ca_api


class CaCallError(Exception):
    """The CA refused or could not be reached; the message says which and why."""


def channel(address: str, root_pem: bytes, *, own_connection: bool = False) -> grpc.aio.Channel:
    """A TLS channel to the CA. gRPC shares connections between channels to one address within a process;
    `own_connection` gives this channel its own, as a separate agent process would have (benchmarks)."""
    options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=root_pem), options)


async def create_certificate(ch: grpc.aio.Channel, *, csr: str, token: str, validity_seconds: int,
                             timeout: float = 10.0) -> list[str]:
    """The PEM chain the CA returns, leaf first."""
    call = ch.unary_unary(istio_ca_api.METHOD_PATH,
                          request_serializer=istio_ca_api.IstioCertificateRequest.SerializeToString,
                          response_deserializer=istio_ca_api.IstioCertificateResponse.FromString)
    request = istio_ca_api.IstioCertificateRequest(csr=csr, validity_duration=validity_seconds)
    try:
        response = await call(request, metadata=(("authorization", f"Bearer {token}"),), timeout=timeout)
    except grpc.aio.AioRpcError as err:
        raise CaCallError(f"{err.code().name}: {err.details()}") from err
    if not response.cert_chain:
        raise CaCallError("the CA returned an empty certificate chain")
    return list(response.cert_chain)
