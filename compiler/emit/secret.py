"""SDS Secret resources: a certificate with its key, or a validation context (a CA bundle).

Envoy's Secret holds one of the two, so the model gives a CA bundle its own secret name (Istio's
`<name>-cacert`).
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from compiler import model
from compiler.emit.common import EmitError


def _data(value: str, inline: bool) -> base_pb2.DataSource:
    return base_pb2.DataSource(inline_string=value) if inline else base_pb2.DataSource(filename=value)


def of(secret: model.Secret) -> secret_pb2.Secret:
    has_cert = bool(secret.certificate_chain or secret.private_key)
    if has_cert and secret.trusted_ca:
        raise EmitError(
            f"secret {secret.name!r} has both a certificate and a CA bundle; Envoy takes one per secret"
        )
    if has_cert:
        cert = common_pb2.TlsCertificate(
            certificate_chain=_data(secret.certificate_chain, secret.inline),
            private_key=_data(secret.private_key, secret.inline),
        )
        return secret_pb2.Secret(name=secret.name, tls_certificate=cert)
    if secret.trusted_ca:
        validation = common_pb2.CertificateValidationContext(
            trusted_ca=_data(secret.trusted_ca, secret.inline)
        )
        return secret_pb2.Secret(name=secret.name, validation_context=validation)
    raise EmitError(f"secret {secret.name!r} has neither a certificate nor a CA bundle")
