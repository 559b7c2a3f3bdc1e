"""`meshward inject FILE|-`: Kubernetes manifests in, the same manifests with the sidecar injected out, as
`istioctl kube-inject` (reconciler/inject). Exit 0, or 2 with a located error (MW0001 for YAML syntax, MW0006 for a
workload without a pod spec) and nothing written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler import diagnostics
from reconciler.inject import manifests, sidecar

_DEFAULTS = sidecar.Options()


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    i = sub.add_parser("inject", help="add the Envoy sidecar and meshward agent to the workloads of Kubernetes "
                                      "manifests, as `istioctl kube-inject`")
    i.add_argument("file", metavar="FILE|-", help="a YAML file of one or more documents, or - for stdin")
    i.add_argument("-o", "--output", metavar="FILE", help="write there instead of stdout")
    i.add_argument("--xds-address", default=_DEFAULTS.xds_address, metavar="H:P",
                   help="the reconciler's xDS Service (default: %(default)s, deploy/'s)")
    i.add_argument("--ca-address", default=_DEFAULTS.ca_address, metavar="H:P",
                   help="the reconciler's CA Service (default: %(default)s)")
    i.add_argument("--proxy-image", default=_DEFAULTS.proxy_image, help="Envoy's image (default: %(default)s)")
    i.add_argument("--agent-image", default=_DEFAULTS.agent_image,
                   help="meshward's image, for `meshward agent` (default: %(default)s)")
    i.add_argument("--trust-domain", default=_DEFAULTS.trust_domain,
                   help="the SPIFFE trust domain of workload identities (default: %(default)s)")
    i.add_argument("--ca-root-config-map", default=_DEFAULTS.ca_root_config_map, metavar="NAME",
                   help="the ConfigMap (key root-cert.pem) in each workload's namespace holding the CA's root "
                        "(default: %(default)s)")
    i.add_argument("--xds-tls", action="store_true",
                   help="the injected Envoy reaches `serve --xds-tls` over mTLS with the agent's certificate")


def run(args: argparse.Namespace) -> int:
    name = "<stdin>" if args.file == "-" else args.file
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        print(f"meshward inject: cannot read {name}: {err}", file=sys.stderr)
        return 2
    options = sidecar.Options(xds_address=args.xds_address, ca_address=args.ca_address,
                              proxy_image=args.proxy_image, agent_image=args.agent_image,
                              trust_domain=args.trust_domain, ca_root_config_map=args.ca_root_config_map,
                              xds_tls=args.xds_tls)
    try:
        injected = manifests.inject_stream(text, options)
    except manifests.ManifestError as err:
        position = diagnostics.Position(name, err.line, err.column)
        print(diagnostics.make("MW0001" if err.syntax else "MW0006", str(err), position).render(), file=sys.stderr)
        return 2
    for workload, decision in injected.decisions:
        print(f"meshward inject: {workload}: {decision}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(injected.text, encoding="utf-8")
    else:
        sys.stdout.write(injected.text)
    return 0
