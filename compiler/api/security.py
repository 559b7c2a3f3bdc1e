"""Security kinds (security.istio.io): PeerAuthentication, AuthorizationPolicy, RequestAuthentication."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

from compiler.api.base import ApiModel, Duration
from compiler.api.common import PolicyTargetReference, TypeWorkloadSelector

WorkloadSelector = TypeWorkloadSelector  # security kinds use istio.type.v1beta1.WorkloadSelector (matchLabels)
NonEmpty = Annotated[str, Field(min_length=1)]
MtlsMode = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]


class MutualTLS(ApiModel):
    """PeerAuthentication.MutualTLS."""

    mode: MtlsMode | None = None


class PeerAuthentication(ApiModel):
    selector: TypeWorkloadSelector | None = None
    mtls: MutualTLS | None = None
    port_level_mtls: dict[int | str, MutualTLS] | None = None  # YAML keys are port numbers (ints or strings)


class Source(ApiModel):
    principals: list[str] | None = None
    not_principals: list[str] | None = None
    request_principals: list[str] | None = None
    not_request_principals: list[str] | None = None
    namespaces: list[str] | None = None
    not_namespaces: list[str] | None = None
    ip_blocks: list[str] | None = None
    not_ip_blocks: list[str] | None = None
    remote_ip_blocks: list[str] | None = None
    not_remote_ip_blocks: list[str] | None = None
    service_accounts: list[Annotated[str, Field(max_length=320)]] | None = Field(None, max_length=16)
    not_service_accounts: list[Annotated[str, Field(max_length=320)]] | None = Field(None, max_length=16)
    trust_domains: list[str] | None = None
    not_trust_domains: list[str] | None = None


class Operation(ApiModel):
    hosts: list[str] | None = None
    not_hosts: list[str] | None = None
    ports: list[str] | None = None
    not_ports: list[str] | None = None
    methods: list[str] | None = None
    not_methods: list[str] | None = None
    paths: list[str] | None = None
    not_paths: list[str] | None = None


class From(ApiModel):
    """Rule.From."""

    source: Source | None = None


class To(ApiModel):
    """Rule.To."""

    operation: Operation | None = None


class Condition(ApiModel):
    key: str
    values: list[str] | None = None
    not_values: list[str] | None = None


class Rule(ApiModel):
    from_: list[From] | None = Field(None, alias="from", max_length=512)
    to: list[To] | None = None
    when: list[Condition] | None = None


class ExtensionProvider(ApiModel):
    """AuthorizationPolicy.ExtensionProvider."""

    name: str | None = None


class AuthorizationPolicy(ApiModel):
    selector: TypeWorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: list[PolicyTargetReference] | None = Field(None, max_length=16)
    rules: list[Rule] | None = Field(None, max_length=512)
    action: Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"] | None = None
    provider: ExtensionProvider | None = None


class JWTHeader(ApiModel):
    name: NonEmpty
    prefix: str | None = None


class ClaimToHeader(ApiModel):
    header: Annotated[str, Field(min_length=1, pattern=r"^[-_A-Za-z0-9]+$")]
    claim: NonEmpty


class JWTRule(ApiModel):
    issuer: NonEmpty | None = None
    audiences: list[NonEmpty] | None = None
    jwks_uri: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    jwks_uri_legacy: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(None, alias="jwks_uri")
    jwks: str | None = None
    from_headers: list[JWTHeader] | None = None
    from_params: list[NonEmpty] | None = None
    from_cookies: list[NonEmpty] | None = None
    output_payload_to_header: str | None = None
    forward_original_token: bool | None = None
    output_claim_to_headers: list[ClaimToHeader] | None = None
    space_delimited_claims: list[NonEmpty] | None = Field(None, max_length=64)
    timeout: Duration | None = None
    presence: Literal["OPTIONAL", "REQUIRED"] | None = None


class RequestAuthentication(ApiModel):
    selector: TypeWorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: list[PolicyTargetReference] | None = Field(None, max_length=16)
    jwt_rules: list[JWTRule] | None = Field(None, max_length=4096)


# `when` keys with a name in brackets (Pilot's extractNameInBrackets / extractNameInNestedBrackets)


def claim_path(key: str) -> tuple[str, ...] | None:
    """`request.auth.claims[a][b]` -> ("a", "b") (extractNameInNestedBrackets); None if malformed."""
    rest = key.removeprefix("request.auth.claims")
    found = re.fullmatch(r"(\[[^\[\]]+\])+", rest)
    return tuple(re.findall(r"\[([^\[\]]+)\]", rest)) if found else None


def header_name(key: str) -> str | None:
    found = re.fullmatch(r"request\.headers\[([^\[\]]+)\]", key)
    return found.group(1) if found else None
