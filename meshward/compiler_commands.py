"""The compiler's commands: validate, compile, schemas, messages. Flag names are a contract (DESIGN.md): scripts
rely on them.

Exit codes (DESIGN.md): 0 valid (warnings allowed), 1 invalid policy, 2 usage or I/O error. `validate` fails on
every error, flagged ones too (a CI gate), and with `--failure-threshold warning` on warnings; `compile` fails on
rejected errors, and on flagged ones with `--strict` (compiler.codes says which are which).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from compiler import build as build_mod
from compiler import codes, diagnostics, load, output, pipeline
from compiler.reuse.carry import Carry
from compiler.translate.unsupported import field_notes, input_notes
from meshward import build_inputs
from reconciler import gcpause

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
# istioctl analyze's --failure-threshold levels -> the severities that fail. meshward reports no info-level
# diagnostics, so `info` fails on what `warning` fails on.
THRESHOLDS = {"info": frozenset(diagnostics.Severity), "warning": frozenset(diagnostics.Severity),
              "error": frozenset({diagnostics.Severity.ERROR})}
COMMANDS = frozenset({"validate", "compile", "schemas", "messages", "fields"})
FIELDS_BEGIN, FIELDS_END = "<!-- fields:begin -->\n", "<!-- fields:end -->"


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    v = sub.add_parser("validate", help="validate policy files or directories")
    v.add_argument("paths", nargs="*", metavar="PATH", help="policy files or directories (read recursively)")
    v.add_argument("--list-codes", action="store_true",
                   help="print every diagnostic code (code, severity, blocks, what) and exit, as `meshward messages`")
    v.add_argument("--format", choices=output.FORMATS, default="text",
                   help="text lines, json, github (workflow annotations) or sarif (code scanning) (default: "
                        "%(default)s)")
    v.add_argument("--max-file-size", type=int, default=load.MAX_FILE_BYTES, metavar="BYTES",
                   help="a larger file is reported (MW0010) and not read (default: %(default)s)")
    v.add_argument("--failure-threshold", type=str.lower, choices=tuple(THRESHOLDS), default="error",
                   help="the least severity that fails validation, as istioctl analyze's (default: error)")
    v.add_argument("--allow-empty", action="store_true",
                   help="exit 0 when no policy file is found (by default that exits 2: a wrong path must not pass CI)")
    build_inputs.add_trust(v)
    build_inputs.add_fetch(v, offline=True)

    c = sub.add_parser("compile", help="compile the Envoy config of one proxy (or all)")
    c.add_argument("path", metavar="PATH", help="the policy tree (a file or a directory)")
    target = c.add_mutually_exclusive_group(required=True)
    target.add_argument("--node", metavar="NODE_ID", help="the proxy, TYPE~IP~NAME.NAMESPACE~DOMAIN")
    target.add_argument("--all", action="store_true", help="every proxy of the tree, one file each into -o DIR")
    c.add_argument("--format", choices=("json", "bootstrap"), default="json",
                   help="json: a config dump as Envoy's /config_dump; bootstrap: a static bootstrap Envoy can run "
                        "(default: %(default)s)")
    c.add_argument("-o", "--output", metavar="FILE_OR_DIR",
                   help="write there instead of stdout (a directory with --all)")
    c.add_argument("--strict", action="store_true",
                   help="analyzer errors about configs Pilot serves (flagged) fail the compile too")
    c.add_argument("--credentials-dir", metavar="DIR",
                   help="with --format bootstrap: SDS secrets as `meshward serve` reads them (DIR/<name>/tls.crt, "
                        "tls.key, ca.crt), inlined as static secrets")
    c.add_argument("--mesh-identity", action="store_true",
                   help="the proxies run `meshward agent` (as in a mesh served with `serve --ca-dir`): where no "
                        "PeerAuthentication applies, Istio's default PERMISSIVE (mTLS and plaintext) instead of "
                        "plaintext only")
    c.add_argument("--sds-socket", metavar="PATH",
                   help="with --format bootstrap: the socket of `meshward agent`, which serves the mesh identity "
                        "(`default`, `ROOTCA`) to a config that needs it (default: Istio's "
                        "./var/run/secrets/workload-spiffe-uds/socket)")
    build_inputs.add_trust(c)
    build_inputs.add_fetch(c, offline=True)

    s = sub.add_parser("schemas", help="print (or write, or check) the JSON Schema of every kind")
    s.add_argument("--dir", default="schemas", help="with --check: the folder to compare (default: %(default)s)")
    s.add_argument("--check", action="store_true", help="fail when the files in --dir differ from the models")
    s.add_argument("--write", metavar="DIR", help="write one KIND.json per kind into DIR instead of printing them "
                                                  "(one JSON object, file name -> schema)")

    m = sub.add_parser("messages", help="print (or write, or check) the table of diagnostic codes")
    m.add_argument("--file", default="docs/messages.md", help="with --check: the file to compare (default: "
                                                             "%(default)s)")
    m.add_argument("--check", action="store_true", help="fail when --file differs from the codes")
    m.add_argument("--write", metavar="DIR", help="write DIR/messages.md instead of printing it")

    f = sub.add_parser("fields", help="print (or write, or check) README's lists of fields that are not compiled")
    f.add_argument("--file", default="README.md", help="the README with the fields block (default: %(default)s)")
    f.add_argument("--check", action="store_true", help="fail when --file's block differs from the coverage")
    f.add_argument("--write", action="store_true", help="rewrite --file's block instead of printing it")


def run(args: argparse.Namespace) -> int:
    handler = {"validate": _validate, "compile": _compile, "schemas": _schemas, "messages": _messages,
               "fields": _fields}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): not an I/O problem to report; `entry` ends quietly
        raise
    except OSError as err:  # a file that cannot be written (or read): one line, not a traceback
        print(f"meshward {args.command}: {_io_problem(err)}", file=sys.stderr)
        return EXIT_USAGE


def _io_problem(err: OSError) -> str:
    where = f"{err.filename}: " if err.filename is not None else ""
    return f"{where}{err.strerror or err}"


def _validate(args: argparse.Namespace) -> int:
    if args.list_codes:
        return _list_codes()
    if not args.paths:
        print("meshward validate: give at least one PATH (or --list-codes)", file=sys.stderr)
        return EXIT_USAGE
    loaded = load.load(args.paths, max_file_bytes=args.max_file_size)
    with gcpause.GcPause().paused():  # this process runs the compiler: it pauses the cyclic GC around it
        checked = pipeline.check_documents(loaded.documents, loaded.diagnostics, loaded.files)
    inputs = build_inputs.inputs(args, checked)
    # the fields that are validated but not compiled, said where a pull request shows them (compile says so too),
    # and what the build's inputs make of the policies (jwksUris fetched with --fetch-jwks that give no key set)
    found = [*checked.diagnostics, *field_notes(checked.resources, Carry()),
             *input_notes(checked.resources, inputs, fetched_only=True)]
    errors = sum(d.severity is diagnostics.Severity.ERROR for d in found)
    warnings = len(found) - errors
    summary = (f"{_count(loaded.files, 'file')}, {_count(len(checked.resources), 'resource')}: "
               f"{_count(errors, 'error')}, {_count(warnings, 'warning')}")
    output.render(found, args.format, sys.stdout, summary=summary if args.format == "text" else "")
    if any(d.code == "MW0009" for d in found):
        return EXIT_USAGE
    if not loaded.files and not args.allow_empty:
        print(f"meshward validate: no policy file (*.yaml, *.yml) found in {' '.join(args.paths)}; --allow-empty "
              "accepts that", file=sys.stderr)
        return EXIT_USAGE
    failing = THRESHOLDS[args.failure_threshold]
    return EXIT_INVALID if any(d.severity in failing for d in found) else EXIT_OK


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _compile(args: argparse.Namespace) -> int:
    if not Path(args.path).exists():
        print(f"meshward compile: no such file or directory: {args.path}", file=sys.stderr)
        return EXIT_USAGE
    with gcpause.GcPause().paused():  # as above
        checked = pipeline.check([args.path])
        inputs = dataclasses.replace(build_inputs.inputs(args, checked), mesh_identity=args.mesh_identity)
        result = build_mod.from_checked(checked, strict=args.strict, inputs=inputs)
    output.render([d for d in result.diagnostics], "text", sys.stderr)
    if not result.ok:
        return EXIT_INVALID
    if flagged := build_mod.flagged(result):
        print(f"meshward compile: {len(flagged)} flagged error(s): served with Pilot's semantics, as istiod would; "
              "--strict fails on them", file=sys.stderr)
    from compiler.emit import bootstrap_static, dump

    secrets = _credentials(args.credentials_dir)
    if secrets is None:
        return EXIT_USAGE

    def render(node_id: str) -> str:
        cfg = build_mod.proxy_config(result, node_id)
        if args.format == "json":
            return dump.to_json(dump.config_dump(cfg))
        cfg = build_mod.with_secrets(cfg, secrets)
        if missing := sorted(cfg.secret_references() - {s.name for s in cfg.secrets}):
            raise _MissingSecrets(node_id, missing)
        return dump.to_json(bootstrap_static.static_bootstrap(
            cfg, sds_socket=args.sds_socket or bootstrap_static.AGENT_SDS_SOCKET))

    try:
        if args.all:
            return _compile_all(result, render, args.output)
        text = render(args.node)
    except build_mod.InvalidNodeId as err:
        print(f"meshward compile: error MW0402: {err} ({codes.get('MW0402').hint})", file=sys.stderr)
        return EXIT_USAGE
    except LookupError as err:
        print(f"meshward compile: error MW0401: {err.args[0] if err.args else err}", file=sys.stderr)
        return EXIT_INVALID
    except _MissingSecrets as err:
        print(f"meshward compile: error MW0410: {err}", file=sys.stderr)
        return EXIT_INVALID
    _write_or_print(text, args.output)
    return EXIT_OK


class _MissingSecrets(Exception):
    """A static bootstrap that names SDS secrets it does not hold: Envoy refuses it at start ("Unknown static
    certificate validation context: NAME"), so none is written. The mesh identity is not among them: the agent
    serves it over `sds-grpc`."""

    def __init__(self, node_id: str, names: list[str]) -> None:
        super().__init__(f"{node_id}: the config refers to SDS secrets {', '.join(map(repr, names))} that it does "
                         "not hold, and Envoy refuses such a bootstrap, so none was written: give them with "
                         "--credentials-dir DIR (DIR/<credentialName>/tls.crt, tls.key and ca.crt)")


def _credentials(directory: str | None) -> dict[str, build_mod.Secret] | None:
    """The secrets of --credentials-dir, or None (after saying why) when one is refused."""
    if directory is None:
        return {}
    from reconciler.kube import credentials

    creds = credentials.load_dir(Path(directory))
    for problem in creds.problems:
        print(f"meshward compile: {problem}", file=sys.stderr)
    return None if creds.problems else dict(creds.secrets)


def _compile_all(result: build_mod.Build, render: Callable[[str], str], out_dir: str | None) -> int:
    if not out_dir:
        print("meshward compile: --all needs -o DIR", file=sys.stderr)
        return EXIT_USAGE
    target = Path(out_dir)
    if target.exists() and not target.is_dir():
        print(f"meshward compile: {out_dir}: not a directory (--all writes one file per proxy into -o DIR)",
              file=sys.stderr)
        return EXIT_USAGE
    proxies = result.proxies()
    if not proxies:
        # Exit 0, as a valid tree is: a tree of policies only is valid (its workloads may come from a cluster,
        # `serve --kubeconfig`); a path with no policy file at all is `validate`'s exit 2.
        print("meshward compile: no proxies: the tree has no WorkloadEntry, EndpointSlice endpoint, Pod, "
              "Deployment, StatefulSet, DaemonSet or ReplicaSet that Istio would inject to compile a config for, "
              "so nothing was written", file=sys.stderr)
        return EXIT_OK
    target.mkdir(parents=True, exist_ok=True)
    for proxy in proxies:
        safe = proxy.node_id.replace("~", "_").replace("/", "_")
        _write(target / f"{safe}.json", render(proxy.node_id))
    return EXIT_OK


def _write_or_print(text: str, path: str | None) -> None:
    if path:
        _write(Path(path), text)
    else:
        sys.stdout.write(text)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as err:  # a failed write (EIO, ENOSPC) may not name the file: `run` reports it with the name
        if err.filename is None:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def _schemas(args: argparse.Namespace) -> int:
    from compiler import schema

    if args.check:
        drift = schema.check(Path(args.dir))
        for line in drift:
            print(line, file=sys.stderr)
        return EXIT_INVALID if drift else EXIT_OK
    if args.write:
        schema.write(Path(args.write))
        return EXIT_OK
    every = {name: json.loads(text) for name, text in schema.render_all().items()}
    sys.stdout.write(json.dumps(every, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return EXIT_OK


def _messages(args: argparse.Namespace) -> int:
    path = Path(args.file)
    text = codes.render_markdown()
    if args.check:
        same = path.exists() and path.read_text() == text
        if not same:
            print(f"{path} is out of date: run meshward messages --write {path.parent}", file=sys.stderr)
        return EXIT_OK if same else EXIT_INVALID
    if args.write:
        target = Path(args.write)
        target.mkdir(parents=True, exist_ok=True)
        _write(target / "messages.md", text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _list_codes() -> int:
    """`validate --list-codes`: the codes as plain columns, for a terminal (`meshward messages` is the markdown)."""
    for c in codes.all_codes():
        print(f"{c.code}  {c.severity:<7}  blocks: {c.blocks:<13}  {c.title}")
    return EXIT_OK


def _fields(args: argparse.Namespace) -> int:
    """README's block between the `fields` markers, generated from compiler.coverage."""
    from compiler import coverage

    path = Path(args.file)
    text = path.read_text() if path.exists() else ""
    start, end = text.find(FIELDS_BEGIN), text.find(FIELDS_END)
    if start < 0 or end < start:
        print(f"{path} has no {FIELDS_BEGIN.strip()} ... {FIELDS_END} block", file=sys.stderr)
        return EXIT_USAGE
    new = text[:start + len(FIELDS_BEGIN)] + coverage.render_markdown() + text[end:]
    if args.check:
        if new != text:
            print(f"{path} is out of date: run meshward fields --write", file=sys.stderr)
        return EXIT_OK if new == text else EXIT_INVALID
    if args.write:
        path.write_text(new)
    else:
        sys.stdout.write(coverage.render_markdown())
    return EXIT_OK
