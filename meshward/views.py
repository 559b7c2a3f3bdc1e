"""`meshward proxy-config` and `meshward describe`: what one proxy gets and why, from a running `serve` (its admin
API) or offline from a policy tree (`--file`, compiled here). Exit codes (DESIGN.md): 0, 1 unknown proxy, 2 usage
or I/O error (an unreachable server, a tree that does not compile)."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from io import StringIO
from pathlib import Path
from typing import Any

VIEWS = ("cluster", "listener", "route", "endpoint", "secret", "bootstrap", "all")
EXIT_UNKNOWN = 1
EXIT_ERROR = 2


class _Failed(Exception):
    """A one-line message and the exit code it ends with."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_arguments(pc: argparse.ArgumentParser, describe: argparse.ArgumentParser, default_admin: str,
                  default_xds: str) -> None:
    pc.add_argument("view", choices=VIEWS, help="which part of the proxy's config to show")
    pc.add_argument("node", metavar="NODE_ID", help="the proxy, TYPE~IP~NAME.NAMESPACE~DOMAIN")
    pc.add_argument("--name", default=None, metavar="N",
                    help="only this cluster (FQDN or full name), listener, route config or secret")
    pc.add_argument("--port", type=int, default=None, metavar="P", help="only clusters and listeners of this port")
    pc.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table",
                    help="table (istioctl's columns), or the resources themselves (default: %(default)s)")
    pc.add_argument("--xds-address", default=default_xds, metavar="H:P",
                    help="the xDS address the bootstrap view connects to (default: %(default)s)")
    pc.add_argument("--credentials-dir", default=None, metavar="DIR",
                    help="with --file: TLS credentials for Gateway credentialName as `serve` reads them "
                         "(DIR/<name>/{tls.crt,tls.key,ca.crt}); default: none")
    for p in (pc, describe):
        where = p.add_mutually_exclusive_group()
        where.add_argument("--file", default=None, metavar="PATH",
                           help="compile this policy tree instead of asking a running serve")
        where.add_argument("--admin-address", default=default_admin, metavar="H:P",
                           help="a running serve's admin address (default: %(default)s)")
    describe.add_argument("node", metavar="NODE_ID", help="the proxy, TYPE~IP~NAME.NAMESPACE~DOMAIN")
    describe.add_argument("-o", "--output", choices=("text", "json"), default="text",
                          help="text or JSON (default: %(default)s)")


def proxy_config(args: argparse.Namespace) -> int:
    from compiler import proxy_views

    try:
        dump = (_offline_dump(args.file, args.node, args.credentials_dir) if args.file
                else _live(args.admin_address, "config", args.node))
    except _Failed as err:
        print(f"meshward proxy-config: {err}", file=sys.stderr)
        return err.code
    if args.view == "bootstrap":
        from reconciler.xds import bootstrap

        # the ADS bootstrap `meshward bootstrap` writes for this node: what its Envoy starts from
        _write(bootstrap.render(args.node, args.xds_address), "yaml" if args.output == "yaml" else "json")
        return 0
    f = proxy_views.Filter(args.name, args.port)
    views = [v for v in proxy_views.VIEWS if args.view in (v, "all")]
    if args.output != "table":
        doc: Any = (proxy_views.resources(dump, views[0], f) if len(views) == 1
                    else {v: proxy_views.resources(dump, v, f) for v in views})
        _write(doc, args.output)
        return 0
    parts = []
    for v in views:
        body = proxy_views.table(proxy_views.VIEWS[v].headers, proxy_views.rows(dump, v, f))
        parts.append(f"{v.upper()}S\n{body}" if len(views) > 1 else body)
    sys.stdout.write("\n".join(parts))
    return 0


def describe(args: argparse.Namespace) -> int:
    try:
        doc = _offline_describe(args.file, args.node) if args.file else _live(args.admin_address, "describe",
                                                                               args.node)
    except _Failed as err:
        print(f"meshward describe: {err}", file=sys.stderr)
        return err.code
    if args.output == "json":
        _write(doc, "json")
    else:
        sys.stdout.write(render_description(doc))
    return 0


def render_description(doc: dict[str, Any]) -> str:
    """Like `istioctl x describe pod`: the proxy, then each config that applies, why, and where it is."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(doc["labels"].items()))
    out = StringIO()
    out.write(f"Proxy: {doc['node']}\n   Kind: {doc['kind']}\n   Workload: {doc['workload']}\n"
              f"   Labels: {labels or '-'}\n")
    kind = None
    for a in doc["applied"]:
        if a["kind"] != kind:
            kind = a["kind"]
            out.write(f"--------------------\n{kind}:\n")
        out.write(f"   {a['namespace']}/{a['name']}  {a['file']}:{a['line']}\n      {a['why']}\n")
    return out.getvalue()


def _build(path: str) -> Any:
    from compiler import build

    if not Path(path).exists():
        raise _Failed(f"no such file or directory: {path}", EXIT_ERROR)
    result = build.build([path])
    if not result.ok:
        first = build.errors(result)[0]
        raise _Failed(f"{path} does not compile ({len(build.errors(result))} error(s), first: {first}); "
                      f"see `meshward validate {path}`", EXIT_ERROR)
    return result


def _offline_dump(path: str, node: str, credentials_dir: str | None) -> Any:
    from compiler import build

    result = _build(path)
    secrets = _credentials(credentials_dir) if credentials_dir else {}
    try:
        return build.config_dump(build.snapshot_for(result, node, secrets=secrets))
    except LookupError as err:
        raise _Failed(f"unknown proxy {node}: {err}", EXIT_UNKNOWN) from None
    except build.InconsistentSnapshot as err:
        hint = "" if credentials_dir else " (credentialName secrets: give them with --credentials-dir DIR)"
        raise _Failed(f"not servable: {err}{hint}", EXIT_ERROR) from None


def _credentials(directory: str) -> Any:
    from reconciler.kube import credentials

    if not Path(directory).is_dir():
        raise _Failed(f"--credentials-dir {directory}: not a directory", EXIT_ERROR)
    found = credentials.load_dir(Path(directory))
    if found.problems:
        raise _Failed(f"--credentials-dir {directory}: {found.problems[0]}", EXIT_ERROR)
    return dict(found.secrets)


def _offline_describe(path: str, node: str) -> Any:
    from compiler import build

    result = _build(path)
    try:
        return build.describe(result, node).to_json()
    except LookupError as err:
        raise _Failed(f"unknown proxy {node}: {err}", EXIT_UNKNOWN) from None


def _live(admin: str, what: str, node: str) -> Any:
    """GET /debug/<what>?node=: 404 is an unknown proxy (exit 1); anything else that is not 200 exits 2."""
    url = f"http://{admin}/debug/{what}?node={urllib.parse.quote(node)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        message = err.read().decode(errors="replace").strip() or err.reason
        raise _Failed(message, EXIT_UNKNOWN if err.code == 404 else EXIT_ERROR) from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise _Failed(f"cannot reach {admin}: {err}", EXIT_ERROR) from None


def _write(doc: Any, output: str) -> None:
    if output == "yaml":
        from ruamel.yaml import YAML
        from ruamel.yaml.scalarstring import walk_tree

        walk_tree(doc)  # multi-line strings (PEM certificates) as literal blocks, readable as they were written
        YAML().dump(doc, sys.stdout)
    else:
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
