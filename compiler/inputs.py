"""What a build takes besides the policy tree: the mesh's trust domain, the JSON Web Key Sets fetched for
RequestAuthentication `jwksUri`s (or found through their issuers' OpenID discovery), and whether the proxies run
agents that serve the mesh identity.

The compiler stays pure (no network, no clock): the reconciler, or `meshward compile --fetch-jwks`, fetches key sets
and hands them in here, as it hands in the cluster's documents. Two builds with different inputs share no carried
results (`compiler.build.from_checked` starts the second cold), since translate's results depend on them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TypeAlias

from compiler.trust import TrustDomain


@dataclasses.dataclass(frozen=True, slots=True)
class Discovery:
    """The key set of a jwtRule with neither `jwks` nor `jwksUri`: found through its issuer's OpenID discovery
    document, whose `jwks_uri` names it (Pilot's jwks_resolver.go resolveJwksURIUsingOpenID)."""

    issuer: str

    def __str__(self) -> str:
        return f"issuer {self.issuer} (OpenID discovery)"


# where a rule's key set is fetched from: its jwksUri, or its issuer's discovery document
KeySource: TypeAlias = str | Discovery


@dataclasses.dataclass(frozen=True, slots=True)
class FetchedJwks:
    """The outcome of fetching one key source: the key set it served (`keys`), or why there is none (`error`)."""

    keys: str = ""
    error: str = ""


@dataclasses.dataclass(frozen=True)
class BuildInputs:
    trust: TrustDomain = dataclasses.field(default_factory=TrustDomain)
    # jwksUri or Discovery -> what fetching it gave; a source not here was not fetched (offline builds)
    jwks: Mapping[KeySource, FetchedJwks] = dataclasses.field(default_factory=dict)
    # every proxy runs an agent serving the mesh identity (`serve --ca-dir`, `compile --mesh-identity`): Istio's
    # default PERMISSIVE applies where no PeerAuthentication does (compiler.translate.peer); else plaintext only
    mesh_identity: bool = False
