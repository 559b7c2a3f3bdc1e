"""Istio's certificate API (istio/api security/v1alpha1/ca.proto, package `istio.v1.auth`), built at import time
from a FileDescriptorProto written here: no package on PyPI ships Istio's generated Python, and generated code
without its generator in the repository would be code nobody can regenerate. Field numbers are copied from
ca.proto (field 2, the removed `subject_id`, stays unused); the wire format is therefore Istio's, and Istio's own
agents can call meshward's CA.

    message IstioCertificateRequest { string csr = 1; int64 validity_duration = 3; google.protobuf.Struct metadata = 4; }
    message IstioCertificateResponse { repeated string cert_chain = 1; }
    service IstioCertificateService { rpc CreateCertificate(IstioCertificateRequest) returns (IstioCertificateResponse); }
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

SERVICE = "istio.v1.auth.IstioCertificateService"
METHOD = "CreateCertificate"
METHOD_PATH = f"/{SERVICE}/{METHOD}"

_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="security/v1alpha1/ca.proto", package="istio.v1.auth", syntax="proto3",
        dependency=["google/protobuf/struct.proto"])
    request = proto.message_type.add(name="IstioCertificateRequest")
    request.field.add(name="csr", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL, json_name="csr")
    request.field.add(name="validity_duration", number=3, type=_F.TYPE_INT64, label=_F.LABEL_OPTIONAL,
                      json_name="validityDuration")
    request.field.add(name="metadata", number=4, type=_F.TYPE_MESSAGE, label=_F.LABEL_OPTIONAL,
                      type_name=".google.protobuf.Struct", json_name="metadata")
    response = proto.message_type.add(name="IstioCertificateResponse")
    response.field.add(name="cert_chain", number=1, type=_F.TYPE_STRING, label=_F.LABEL_REPEATED,
                       json_name="certChain")
    service = proto.service.add(name="IstioCertificateService")
    service.method.add(name=METHOD, input_type=".istio.v1.auth.IstioCertificateRequest",
                       output_type=".istio.v1.auth.IstioCertificateResponse")
    return proto


def _pool() -> descriptor_pool.DescriptorPool:
    """A pool of its own, so nothing else in the process (or a later real istio package) can clash with it."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(_file().SerializeToString())
    return pool


_POOL = _pool()
IstioCertificateRequest = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("istio.v1.auth.IstioCertificateRequest"))
IstioCertificateResponse = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("istio.v1.auth.IstioCertificateResponse"))
