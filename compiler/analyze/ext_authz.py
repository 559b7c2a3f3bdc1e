"""CUSTOM AuthorizationPolicies whose ext_authz provider Pilot cannot build, reported at the policy's
`provider.name`.

MeshConfig lives apart from the policies, so neither Istio's webhook nor meshward's per-resource validation can
check the name; istiod finds out at push time (builder/extauthz.go getExtAuthz: the provider is not defined, is not
an ext_authz kind, or its `service` is not in the registry) and serves, instead of the ext_authz check, a DENY of
the requests the policies match (`-deny-due-to-bad-CUSTOM-action`). meshward compiles the same deny and says why.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler import mesh_config
from compiler.analyze.context import Context
from compiler.api.mesh_config import MeshConfig
from compiler.diagnostics import Diagnostic
from compiler.translate.ext_authz import ext_authz_of


def check(ctx: Context) -> Iterator[Diagnostic]:
    policies = [p for p in ctx.of_kind("AuthorizationPolicy")
                if p.spec.action == "CUSTOM" and p.spec.provider is not None and p.spec.provider.name]
    if not policies:
        return
    config = mesh_config.config_of(ctx.of_kind("ConfigMap"))
    problems: dict[str, str | None] = {}
    for policy in policies:
        name = policy.spec.provider.name
        if name not in problems:
            problems[name] = _problem(ctx, config, name)
        if problems[name]:
            yield policy.diag("MW0328", f'provider "{name}" {problems[name]}: Istio denies the requests this '
                                        "policy matches", ("spec", "provider", "name"))


def _problem(ctx: Context, config: MeshConfig, name: str) -> str | None:
    conf = ext_authz_of(config, name)
    if conf is None:
        defined = [p.name for p in config.extension_providers or ()
                   if p.envoy_ext_authz_http is not None or p.envoy_ext_authz_grpc is not None]
        return ("is not an envoyExtAuthzHttp or envoyExtAuthzGrpc entry of MeshConfig extensionProviders"
                + (f" (those are: {', '.join(defined)})" if defined else " (it defines none)"))
    return ctx.registry.provider_problem(conf.service)
