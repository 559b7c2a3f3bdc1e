"""The flags that give a build its inputs besides the tree, shared by `validate`, `compile` and `serve` so that the
three read them alike: the trust domain (and aliases) and how jwksUri key sets are fetched."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from compiler import build as build_mod
from reconciler import jwks

# a SPIFFE trust domain: DNS-like, as the CA's identities require (reconciler.identity.spiffe)
_DOMAIN = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?")


def _domain(text: str) -> str:
    if not _DOMAIN.fullmatch(text) or len(text) > 253:
        raise argparse.ArgumentTypeError(f"{text!r} is not a trust domain (a DNS name such as cluster.local)")
    return text


def add_trust(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-domain", type=_domain, default=build_mod.TrustDomain().domain,
                        help="the SPIFFE trust domain of workload identities: the CA issues them in it, auto mTLS "
                             "verifies it, AuthorizationPolicy principals of cluster.local stand for it "
                             "(default: %(default)s)")
    parser.add_argument("--trust-domain-alias", type=_domain, action="append", default=[], metavar="DOMAIN",
                        help="another trust domain treated as this mesh's (Istio's trustDomainAliases); repeatable")


def add_fetch(parser: argparse.ArgumentParser, *, offline: bool) -> None:
    if offline:
        parser.add_argument("--fetch-jwks", action="store_true",
                            help="fetch RequestAuthentication jwksUris, and the key sets of rules without one by "
                                 "their issuer's OpenID discovery (https, or http from loopback), and inline them as "
                                 "serve does; without it they get Istio's fail-closed key set and warning MW0412")
    parser.add_argument("--jwks-ca-file", default=None, metavar="FILE",
                        help="PEM roots trusted for https jwksUris (default: the system's)")


def trust(args: argparse.Namespace) -> build_mod.TrustDomain:
    return build_mod.TrustDomain(args.trust_domain, tuple(args.trust_domain_alias))


def fetch_options(args: argparse.Namespace) -> jwks.FetchOptions:
    return jwks.FetchOptions(ca_file=Path(args.jwks_ca_file) if args.jwks_ca_file else None)


def inputs(args: argparse.Namespace, checked: build_mod.Checked) -> build_mod.BuildInputs:
    """The build's inputs for `validate` and `compile`: key sets only when `--fetch-jwks` asks."""
    fetched = (jwks.KeySets(jwks.Fetcher(fetch_options(args))).resolve(build_mod.jwks_sources(checked))
               if args.fetch_jwks else {})
    return build_mod.BuildInputs(trust(args), fetched)
