"""The mesh's trust domain and its aliases: what a workload's SPIFFE identity starts with, and how policies that
name identities are read against it.

One value for the whole revision, given to the build (`meshward compile/validate/serve --trust-domain`; the CA of
`serve` issues certificates in the same one), never a constant: the SANs auto mTLS verifies, and the principals
AuthorizationPolicy matches, must name the domain the CA actually signs for. Istio's semantics, from
pilot/pkg/security/trustdomain (bundle.go, util.go) and pkg/spiffe (ExpandWithTrustDomains): `cluster.local` in a
policy's principal stands for the local trust domain and every alias, so a policy written for the default keeps
working after the domain is renamed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

DEFAULT = "cluster.local"  # Istio's default trust domain (constants.DefaultClusterLocalDomain)
SPIFFE = "spiffe://"  # pkg/spiffe URIPrefix


@dataclasses.dataclass(frozen=True, slots=True)
class TrustDomain:
    """Istio's trustdomain.Bundle: the local domain first, then its aliases (MeshConfig trustDomainAliases)."""

    domain: str = DEFAULT
    aliases: tuple[str, ...] = ()

    @property
    def domains(self) -> tuple[str, ...]:
        """NewBundle's TrustDomains."""
        return (self.domain, *self.aliases)

    def uri_prefixes(self) -> tuple[str, ...]:
        """`spiffe://TD/` per domain of the bundle (AppendURIPrefixToTrustDomain): what a peer's URI SAN must
        start with on inbound mTLS."""
        return tuple(f"{SPIFFE}{td}/" for td in self.domains)

    def spiffe_id(self, namespace: str, service_account: str) -> str:
        """A workload identity as the CA issues it (pkg/spiffe Identity.String)."""
        return f"{SPIFFE}{self.domain}/ns/{namespace}/sa/{service_account}"

    def identities(self, namespace: str, service_account: str) -> tuple[str, ...]:
        """The identity under the local domain and each alias (spiffe.ExpandWithTrustDomains): the SANs a client
        accepts from a server that may still hold a certificate of an older domain."""
        return tuple(f"{SPIFFE}{td}/ns/{namespace}/sa/{service_account}" for td in self.domains)

    def principals(self, values: Sequence[str]) -> list[str]:
        """Bundle.ReplaceTrustDomainAliases: an AuthorizationPolicy principal `TD/ns/NS/sa/SA` whose TD is
        `cluster.local` or one of the bundle's domains stands for every domain of the bundle; other principals
        (another mesh's, `*/ns/...`, not of that shape) are kept as they are."""
        out: list[str] = []
        for principal in values:
            parts = principal.split("/")
            if len(parts) != 5 or parts[0] == "*" or self.foreign(principal) is not None:
                out.append(principal)
            else:
                out += self._replaced(principal, parts)
        return out

    def foreign(self, principal: str) -> str | None:
        """The trust domain a principal `TD/ns/NS/sa/SA` names when it is another mesh's (neither cluster.local
        nor one matching the bundle), else None."""
        parts = principal.split("/")
        if len(parts) != 5 or parts[0] == "*" or parts[0] == DEFAULT or _string_match(parts[0], self.domains):
            return None
        return parts[0]

    def _replaced(self, principal: str, parts: list[str]) -> list[str]:
        """replaceTrustDomains: per domain of the bundle, the principal with that domain (as it is where a `*x`
        domain of the principal already covers it), without duplicates."""
        found: list[str] = []
        for td in self.domains:
            new = principal if _suffix_match(td, parts[0]) else "/".join((td, *parts[1:]))
            if new not in found:
                found.append(new)
        return found

    def trust_domains(self, values: Sequence[str]) -> list[str]:
        """Bundle.ExpandTrustDomainAliases (for `source.trustDomain` / `trustDomains`): a value that is one of the
        bundle's domains stands for all of them."""
        out: list[str] = []
        for value in values:
            for td in self.domains if value in self.domains else (value,):
                if td not in out:
                    out.append(td)
        return out


def _string_match(value: str, patterns: tuple[str, ...]) -> bool:
    """util.go stringMatch: exact, `*`, or a prefix/suffix wildcard on either side."""
    return any(value == p or p == "*" or _prefix_match(value, p) or _prefix_match(p, value)
               or _suffix_match(value, p) or _suffix_match(p, value) for p in patterns)


def _prefix_match(value: str, pattern: str) -> bool:
    return pattern.endswith("*") and value.startswith(pattern[:-1])


def _suffix_match(value: str, pattern: str) -> bool:
    return pattern.startswith("*") and value.endswith(pattern[1:])
