"""Workload identities as Istio names them: `spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT`, the one URI SAN
of every workload certificate (Istio pkg/spiffe/spiffe.go). The CA, the token and the agent all speak of identities
through this type, so the URI is built and parsed in one place."""

from __future__ import annotations

import dataclasses
import re

DEFAULT_TRUST_DOMAIN = "cluster.local"
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # a Kubernetes namespace (DNS-1123 label)
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")  # a service account name (DNS-1123 subdomain)
_DOMAIN = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?")


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    trust_domain: str
    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        if not _DOMAIN.fullmatch(self.trust_domain) or len(self.trust_domain) > 253:
            raise ValueError(f"trust domain {self.trust_domain!r} is not a DNS name")
        check_names(self.namespace, self.service_account)

    @property
    def uri(self) -> str:
        return f"spiffe://{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @classmethod
    def parse(cls, uri: str) -> Identity:
        """The identity a SPIFFE URI names; ValueError for any other URI."""
        scheme, _, rest = uri.partition("://")
        parts = rest.split("/")
        if scheme != "spiffe" or len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa":
            raise ValueError(f"{uri!r} is not spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT")
        return cls(parts[0], parts[2], parts[4])


def check_names(namespace: str, service_account: str) -> None:
    """ValueError unless these are a valid Kubernetes namespace and service account name."""
    if not _LABEL.fullmatch(namespace) or len(namespace) > 63:
        raise ValueError(f"namespace {namespace!r} is not a DNS-1123 label")
    if not _SUBDOMAIN.fullmatch(service_account) or len(service_account) > 253:
        raise ValueError(f"service account {service_account!r} is not a DNS-1123 subdomain")
