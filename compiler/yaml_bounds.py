"""The limits a YAML document must stay within before a parser builds it.

Why: both parsers recurse on nesting. A 200 KB flow sequence nested 100,000 deep (`x: [[[[...]]]]`) overflows the C
stack of ruamel's C composer (a segfault: `validate` dies, and `serve` crashes on the commit again after every
restart); yaml-rs stops at its own recursion limit, and every later stage (schema, models, analyzers) walks the data
recursively too. Aliases do not recurse but multiply: ruamel shares an aliased node, every later stage walks it
once per use (the "billion laughs"). So each document is measured before it is parsed, and one over a limit is a
located error instead:

- size: 1.5 MiB, the largest request etcd accepts by default (`--max-request-bytes`, etcd's docs "System limits"),
  so the largest object a Kubernetes API server can store;
- nesting: 100 collections deep. go-yaml (which Kubernetes' sigs.k8s.io/yaml uses) stops at 10,000 (yaml.v3
  scannerc.go `max_flow_level` / `max_indents`); Python's recursion limit of 1,000 frames, a few a level in the
  later stages, needs far less, and no Istio resource nests 30 deep;
- nodes, counting an alias as every node of what it names: 400,000, the decode count up to which go-yaml v3
  (decode.go `allowedAliasRatio`, CVE-2019-11254) lets aliases expand freely before refusing excessive aliasing.

The measuring is in two steps. The first is a few C-level passes over the bytes that prove the common document
within the limits: collection nesting is at most the number of `[` and `{` plus twice the widest run of spaces and
`-`, `?`, `:` indicators that starts a line (block nesting needs indentation at least every second level), and a
document has at most two nodes per byte, or per indicator. Only a document the first step cannot vouch for (or one with an alias)
is measured exactly: libyaml's event parser (iterative, no recursion) is run over it and stopped at the first
event past a limit, which is also where the error is reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml import events as ev
from ruamel.yaml.error import YAMLError

MAX_DOCUMENT_BYTES = 1_572_864  # etcd's default --max-request-bytes (1.5 MiB)
MAX_DEPTH = 100
MAX_NODES = 400_000

_INDENT_RUN = 30  # a line starting with this many spaces and indicators needs the exact measure
_FLOW_OPENS = MAX_DEPTH - 2 * _INDENT_RUN  # with fewer `[` and `{`, depth <= 2 * (_INDENT_RUN - 1 + 1) + this
_WIDE_LINE = re.compile(rb"^[ \t?:-]{%d}" % _INDENT_RUN, re.MULTILINE)
_ALIAS = re.compile(rb"(?:\A|[\s\[\]{},])\*")
_NOT_INDICATORS = bytes(c for c in range(256) if c not in b":?-,[{")


@dataclasses.dataclass(frozen=True, slots=True)
class Breach:
    code: str
    message: str
    line: int | None  # 0-based, in the document's text; None: the document as a whole
    column: int  # 0-based


def check(text: str, raw: bytes, parser: Callable[[], YAML]) -> Breach | None:
    """The first limit the document `text` (whose UTF-8 is `raw`) breaks, or None. `parser` gives the ruamel
    loader whose event parser measures what the quick pass cannot vouch for."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        return Breach("MW0015", f"YAML document is {len(raw)} bytes, over the limit of {MAX_DOCUMENT_BYTES} "
                                "(1.5 MiB, the largest object the Kubernetes API stores)", None, 0)
    if _vouched(raw):
        return None
    with contextlib.closing(parser().parse(text)) as events:
        return _measure(events)


def _vouched(raw: bytes) -> bool:
    if raw.count(b"[") + raw.count(b"{") >= _FLOW_OPENS or _WIDE_LINE.search(raw) or _ALIAS.search(raw):
        return False
    # every node but the document's own hangs off an indicator: a key and its value off a `:` (or a `?`, a `,` or
    # `{` in a flow mapping), an item off a `-`, `,` or `[`
    return 2 * len(raw) + 2 <= MAX_NODES or 1 + 2 * len(raw.translate(None, _NOT_INDICATORS)) <= MAX_NODES


@dataclasses.dataclass(slots=True)
class _Open:
    """A collection being read: its nodes so far (itself included), its height, the anchor naming it."""

    nodes: int
    height: int
    anchor: str | None


def _measure(events: Iterable[Any]) -> Breach | None:
    """Depth and node count from the event stream, aliases expanded (an anchor's node count and height are known
    once its node ends). A syntax error ends the measure: the parser that follows reports it."""
    stack: list[_Open] = []
    anchors: dict[str, tuple[int, int]] = {}
    total = 0
    try:
        for event in events:
            size, height = 1, 0
            if isinstance(event, ev.CollectionStartEvent):
                stack.append(_Open(1, 0, event.anchor))
                total += 1
                if len(stack) > MAX_DEPTH:
                    return _deep(event)
                continue
            if isinstance(event, ev.CollectionEndEvent):
                done = stack.pop()
                size, height = done.nodes, done.height + 1
                if done.anchor:
                    anchors[done.anchor] = (size, height)
            elif isinstance(event, ev.AliasEvent):
                size, height = anchors.get(event.anchor, (1, 0))
                total += size
                if len(stack) + height > MAX_DEPTH:
                    return _deep(event)
            elif isinstance(event, ev.ScalarEvent):
                total += 1
                if event.anchor:
                    anchors[event.anchor] = (1, 0)
            else:
                continue
            if total > MAX_NODES:
                return Breach("MW0017", f"YAML document has over {MAX_NODES} nodes (an alias counts every node "
                                        "of what it names)", event.start_mark.line, event.start_mark.column)
            if stack:
                stack[-1].nodes += size
                stack[-1].height = max(stack[-1].height, height)
    except YAMLError:
        return None
    return None


def _deep(event: Any) -> Breach:
    return Breach("MW0016", f"YAML nested more than {MAX_DEPTH} collections deep", event.start_mark.line,
                  event.start_mark.column)
