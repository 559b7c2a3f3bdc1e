"""TLS transport sockets: UpstreamTlsContext for clusters (DestinationRule trafficPolicy.tls) and
DownstreamTlsContext for filter chains (Gateway server tls).

Certificates come from SDS secrets (over ADS, or static secrets in a bootstrap) or from files, as the model
says.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import struct_pb2, wrappers_pb2

from compiler import model
from compiler.emit import common
from meshxds import refs

TRANSPORT_SOCKET_TLS = refs.TLS_TRANSPORT_SOCKET  # the name meshxds.refs finds SDS secrets by

_TLS_VERSIONS = {
    "": common_pb2.TlsParameters.TLS_AUTO,
    "TLS_AUTO": common_pb2.TlsParameters.TLS_AUTO,
    "TLSV1_0": common_pb2.TlsParameters.TLSv1_0,
    "TLSV1_1": common_pb2.TlsParameters.TLSv1_1,
    "TLSV1_2": common_pb2.TlsParameters.TLSv1_2,
    "TLSV1_3": common_pb2.TlsParameters.TLSv1_3,
}
_SAN = common_pb2.SubjectAltNameMatcher


def _san_matchers(names: tuple[str, ...], prefixes: tuple[str, ...] = ()) -> list[common_pb2.SubjectAltNameMatcher]:
    """SPIFFE identities are URI SANs, anything else a DNS SAN (as Istio matches them); `prefixes` are URI SANs
    matched by prefix (trust domains)."""
    return [
        *(_SAN(san_type=_SAN.URI if n.startswith("spiffe://") else _SAN.DNS, matcher=string_pb2.StringMatcher(exact=n))
          for n in names),
        *(_SAN(san_type=_SAN.URI, matcher=string_pb2.StringMatcher(prefix=p)) for p in prefixes),
    ]


def _set_validation(
    ctx: tls_pb2.CommonTlsContext, *, ca_secret: str, ca_file: str, sans: tuple[str, ...],
    source: model.SecretSource, mode: common.Mode, san_prefixes: tuple[str, ...] = ()
) -> None:
    """A CA from SDS (with SANs merged in via a combined context), from a file, or else the system roots,
    which is what Istio does for SIMPLE/MUTUAL origination without caCertificates
    (VERIFY_CERTIFICATE_AT_CLIENT)."""
    default = common_pb2.CertificateValidationContext(match_typed_subject_alt_names=_san_matchers(sans, san_prefixes))
    if ca_secret:
        combined = ctx.combined_validation_context
        combined.default_validation_context.CopyFrom(default)
        combined.validation_context_sds_secret_config.CopyFrom(common.sds_config(ca_secret, source, mode))
        return
    if ca_file:
        default.trusted_ca.filename = ca_file
    else:
        default.system_root_certs.SetInParent()
    ctx.validation_context.CopyFrom(default)


def upstream(tls: model.UpstreamTls, mode: common.Mode) -> tls_pb2.UpstreamTlsContext:
    ctx = tls_pb2.CommonTlsContext(alpn_protocols=tls.alpn)
    if tls.credential_secret:
        ctx.tls_certificate_sds_secret_configs.append(common.sds_config(tls.credential_secret, tls.secrets_from,
                                                                         mode))
    elif tls.client_certificate:
        ctx.tls_certificates.append(
            common_pb2.TlsCertificate(
                certificate_chain=base_pb2.DataSource(filename=tls.client_certificate),
                private_key=base_pb2.DataSource(filename=tls.private_key),
            )
        )
    if not tls.insecure_skip_verify:
        _set_validation(
            ctx, ca_secret=tls.ca_secret, ca_file=tls.ca_certificates, sans=tls.subject_alt_names,
            source=tls.secrets_from, mode=mode
        )
    return tls_pb2.UpstreamTlsContext(common_tls_context=ctx, sni=tls.sni)


def downstream(tls: model.DownstreamTls, mode: common.Mode) -> tls_pb2.DownstreamTlsContext:
    ctx = tls_pb2.CommonTlsContext(alpn_protocols=tls.alpn)
    ctx.tls_certificate_sds_secret_configs.append(common.sds_config(tls.credential_secret, tls.secrets_from, mode))
    if tls.min_version or tls.max_version:
        ctx.tls_params.CopyFrom(
            common_pb2.TlsParameters(
                tls_minimum_protocol_version=_TLS_VERSIONS[tls.min_version],
                tls_maximum_protocol_version=_TLS_VERSIONS[tls.max_version],
            )
        )
    if tls.mode != "SIMPLE":
        if not tls.ca_secret:
            raise common.EmitError(
                f"downstream TLS mode {tls.mode} needs a CA secret ({tls.credential_secret!r})"
            )
        _set_validation(ctx, ca_secret=tls.ca_secret, ca_file="", sans=tls.subject_alt_names,
                        source=tls.secrets_from, mode=mode, san_prefixes=tls.san_prefixes)
    require = tls.mode in (
        "MUTUAL",
        "ISTIO_MUTUAL",
    )  # OPTIONAL_MUTUAL validates a certificate when one is sent
    return tls_pb2.DownstreamTlsContext(
        common_tls_context=ctx, require_client_certificate=wrappers_pb2.BoolValue(value=require)
    )


_RAW_BUFFER = "envoy.transport_sockets.raw_buffer"
TLS_MODE_MATCH = "envoy.transport_socket_match"  # the endpoint metadata transport_socket_matches read


def auto_mtls_matches(mutual: base_pb2.TransportSocket) -> list[cluster_pb2.Cluster.TransportSocketMatch]:
    """Pilot's auto mTLS (cluster_tls.go): mTLS toward endpoints whose metadata says `tlsMode: istio`, plaintext
    toward the others (`tlsMode-disabled`, matching any endpoint)."""
    raw = base_pb2.TransportSocket(name=_RAW_BUFFER, typed_config=common.pack(raw_buffer_pb2.RawBuffer()))
    match = struct_pb2.Struct()
    match.update({"tlsMode": "istio"})
    return [cluster_pb2.Cluster.TransportSocketMatch(name="tlsMode-istio", match=match, transport_socket=mutual),
            cluster_pb2.Cluster.TransportSocketMatch(name="tlsMode-disabled", match=struct_pb2.Struct(),
                                                     transport_socket=raw)]


def transport_socket(
    context: tls_pb2.UpstreamTlsContext | tls_pb2.DownstreamTlsContext,
) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name=TRANSPORT_SOCKET_TLS, typed_config=common.pack(context))
