"""Small proto builders every emitter module shares: durations, deterministic Any packing, config sources,
string matchers, percentages and header operations.

They exist so that each Envoy resource module reads as a plain mapping from model fields to proto fields, and
so that the few Envoy conventions (ADS config sources, MILLION-denominator percentages, append actions) live
in one place.
"""

from __future__ import annotations

import dataclasses

from envoy.config.core.v3 import base_pb2, config_source_pb2, grpc_service_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message

from compiler import model

TYPE_PREFIX = "type.googleapis.com/"


class EmitError(ValueError):
    """The model broke a contract the emitter relies on (a bug upstream of emit, never a user error)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Mode:
    """How references are emitted. `static`: a self-contained bootstrap (secrets by name from
    static_resources, routes inline, endpoints inline) instead of ADS references."""

    static: bool = False


ADS_MODE = Mode()
STATIC_MODE = Mode(static=True)


def pack(message: Message) -> any_pb2.Any:
    """Any with a deterministic payload, so that equal models give byte-identical resources."""
    return any_pb2.Any(
        type_url=TYPE_PREFIX + message.DESCRIPTOR.full_name,
        value=message.SerializeToString(deterministic=True),
    )


def duration(ms: float) -> duration_pb2.Duration:
    whole_ms = int(ms)
    return duration_pb2.Duration(seconds=whole_ms // 1000, nanos=(whole_ms % 1000) * 1_000_000)


def seconds(s: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=s)


def ads_source() -> config_source_pb2.ConfigSource:
    """Every dynamic resource comes over the one ADS stream, in the v3 API."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(), resource_api_version=config_source_pb2.ApiVersion.V3
    )


AGENT_SDS_CLUSTER = "sds-grpc"  # Istio's name for the static cluster of the agent's SDS socket


def agent_source() -> config_source_pb2.ConfigSource:
    """The agent's SDS as Pilot points at it (pilot/pkg/model/credentials.go ConstructSdsSecretConfig for
    `default` and `ROOTCA`): gRPC to the bootstrap's static `sds-grpc` cluster, v3, and no initial fetch timeout,
    so a listener or cluster waits for the identity instead of starting without it."""
    grpc = grpc_service_pb2.GrpcService(
        envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=AGENT_SDS_CLUSTER))
    return config_source_pb2.ConfigSource(
        api_config_source=config_source_pb2.ApiConfigSource(
            api_type=config_source_pb2.ApiConfigSource.GRPC, transport_api_version=config_source_pb2.ApiVersion.V3,
            set_node_on_first_message_only=True, grpc_services=[grpc]),
        resource_api_version=config_source_pb2.ApiVersion.V3, initial_fetch_timeout=duration_pb2.Duration())


def sds_config(name: str, source: model.SecretSource, mode: Mode) -> secret_pb2.SdsSecretConfig:
    """A secret by name from whoever serves it: the agent over `sds-grpc` (in either mode: no control plane holds
    the workload's key), else the control plane over ADS, or (static mode) static_resources.secrets, which is what
    an SdsSecretConfig without sds_config means to Envoy."""
    if source is model.SecretSource.AGENT:
        return secret_pb2.SdsSecretConfig(name=name, sds_config=agent_source())
    if mode.static:
        return secret_pb2.SdsSecretConfig(name=name)
    return secret_pb2.SdsSecretConfig(name=name, sds_config=ads_source())


def fraction(percent: float) -> percent_pb2.FractionalPercent:
    """Istio's translatePercentToFractionalPercent: a MILLION denominator keeps 4 decimals of a percentage."""
    return percent_pb2.FractionalPercent(
        numerator=round(percent * 10_000), denominator=percent_pb2.FractionalPercent.MILLION
    )


def regex(pattern: str) -> regex_pb2.RegexMatcher:
    return regex_pb2.RegexMatcher(regex=pattern)  # RE2 is Envoy's default (and only) engine


def string_matcher(match: model.StringMatch) -> string_pb2.StringMatcher:
    if match.kind is model.MatchKind.EXACT:
        return string_pb2.StringMatcher(exact=match.value, ignore_case=match.ignore_case)
    if match.kind is model.MatchKind.PREFIX:
        return string_pb2.StringMatcher(prefix=match.value, ignore_case=match.ignore_case)
    if match.kind is model.MatchKind.SUFFIX:
        return string_pb2.StringMatcher(suffix=match.value, ignore_case=match.ignore_case)
    if match.kind is model.MatchKind.REGEX:
        return string_pb2.StringMatcher(safe_regex=regex(match.value))
    raise EmitError(f"a string matcher cannot be {match.kind.value!r} (value {match.value!r})")


_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_APPEND = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD


def headers_to_add(ops: model.HeaderOps) -> list[base_pb2.HeaderValueOption]:
    """`set` overwrites, `add` appends: Istio's HeaderOperations semantics."""
    out = [
        base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=k, value=v), append_action=_OVERWRITE)
        for k, v in ops.set
    ]
    out += [
        base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=k, value=v), append_action=_APPEND)
        for k, v in ops.add
    ]
    return out
