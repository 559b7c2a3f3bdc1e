"""Rules that can never match and matches that an earlier match already covers, in a VirtualService.

Istio checks this in the VirtualService validation (pkg/config/validation: analyzeUnreachableHTTPRules and friends;
IST0130 unreachable rule, IST0131 ineffective match): a rule after a catch-all rule is unreachable, an identical
match repeated later is ineffective, and a rule whose every match is a repeat is unreachable. For HTTP, a match
with a URI prefix also makes later prefix matches under it ineffective when it constrains nothing more than they
do. Unlike Istio, a match without `method` covers every method (Istio assumes GET), and header / query matches
are compared by what they accept rather than by their text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from compiler.analyze.context import Context
from compiler.api.virtual_service import HTTPMatchRequest, StringMatch
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource

# Fields of HTTPMatchRequest the coverage check understands; a match constraining any other field is only
# compared for exact repeats.
_COVERAGE_FIELDS = {"uri", "method", "authority", "headers", "query_params", "without_headers", "port", "name"}


def check(ctx: Context) -> Iterator[Diagnostic]:
    for vs in ctx.of_kind("VirtualService"):
        for section in ("http", "tcp", "tls"):
            yield from _section(vs, section, getattr(vs.spec, section) or [])
        yield from _overlapping_prefixes(vs)


def _rule_name(rule: Any, index: int) -> str:
    name = getattr(rule, "name", None)
    return f"\"{name}\"" if name else f"#{index}"


def _match_key(match: Any) -> str:
    data = match.model_dump(exclude={"name"} if isinstance(match, HTTPMatchRequest) else set(), exclude_none=True)
    return json.dumps(data, sort_keys=True)


def _section(vs: Resource, section: str, rules: Sequence[Any]) -> Iterator[Diagnostic]:
    seen: dict[str, int] = {}
    catch_all: int | None = None
    keyed = sum(len(rule.match or ()) for rule in rules) > 1  # a lone match repeats nothing: no key needed
    for i, rule in enumerate(rules):
        where = ("spec", section, i)
        if not rule.match:
            if catch_all is not None:
                yield _unreachable(vs, section, rule, i, f"rule #{catch_all} before it has no match", where)
            catch_all = i
            continue
        repeats = 0
        for j, match in enumerate(rule.match):
            if catch_all is not None:
                yield _unreachable(vs, section, rule, i, f"rule #{catch_all} before it has no match",
                                   (*where, "match", j))
                continue
            if not keyed:
                continue
            key = _match_key(match)
            if key in seen:
                repeats += 1
                yield vs.diag("MW0312", f"{section} rule {_rule_name(rule, i)} match #{j} repeats a match of rule "
                                        f"{_rule_name(rules[seen[key]], seen[key])}", (*where, "match", j))
            else:
                seen[key] = i
        if catch_all is None and repeats == len(rule.match):
            yield _unreachable(vs, section, rule, i, "all its matches are used by earlier rules", where)


def _unreachable(vs: Resource, section: str, rule: Any, i: int, reason: str,
                 path: tuple[str | int, ...]) -> Diagnostic:
    return vs.diag("MW0311", f"{section} rule {_rule_name(rule, i)} is never used ({reason})", path)


def _overlapping_prefixes(vs: Resource) -> Iterator[Diagnostic]:
    """Earlier URI-prefix matches that cover later URI-prefix matches (exact repeats are reported above).

    Only an earlier match whose prefix starts the later one's URI can cover it, so the earlier matches are indexed
    by prefix and each later match looks up the prefixes of its own URI: a handful of lookups per match instead of
    a comparison with every earlier one (20,000 rules took minutes)."""
    prefixed: list[tuple[int, int, HTTPMatchRequest]] = []
    seen: set[str] = set()
    for i, rule in enumerate(vs.spec.http or ()):
        for j, match in enumerate(rule.match or ()):
            if match.uri is None or not match.uri.prefix:  # only prefixed matches are compared (a repeat of one
                continue                                    # is prefixed too), so only their keys are needed
            key = _match_key(match)
            if key in seen:
                continue
            seen.add(key)
            prefixed.append((i, j, match))
    rules = vs.spec.http or []
    for a, b in sorted(_covering_pairs(prefixed)):
        (ia, ja, first), (ib, jb, later) = prefixed[a], prefixed[b]
        yield vs.diag("MW0312", f"http rule {_rule_name(rules[ib], ib)} match #{jb} (prefix "
                                f"{later.uri.prefix}) is covered by match #{ja} (prefix "  # type: ignore[union-attr]
                                f"{first.uri.prefix}) of rule {_rule_name(rules[ia], ia)}",  # type: ignore[union-attr]
                      ("spec", "http", ib, "match", jb))


def _covering_pairs(prefixed: Sequence[tuple[int, int, HTTPMatchRequest]]) -> Iterator[tuple[int, int]]:
    """(a, b) for each earlier prefixed match `a` with another prefix that covers the later one `b`."""
    by_prefix: dict[str, list[int]] = {}
    lengths: set[int] = set()  # of the prefixes in by_prefix: the only ones worth looking up
    for b, (_, _, later) in enumerate(prefixed):
        uri = later.uri
        assert uri is not None and uri.prefix
        text = uri.exact if uri.exact is not None else uri.prefix  # what `string_covers` compares a prefix with
        for end in sorted(n for n in lengths if n <= len(text)):
            for a in by_prefix.get(text[:end], ()):
                if prefixed[a][2].uri.prefix != uri.prefix and covers(prefixed[a][2], later):  # type: ignore[union-attr]
                    yield a, b
        by_prefix.setdefault(uri.prefix, []).append(b)
        lengths.add(len(uri.prefix))


def covers(a: HTTPMatchRequest, b: HTTPMatchRequest) -> bool:
    """Every request `b` matches is also matched by `a` (conservative: False when unsure)."""
    extra = {k for k, v in a.model_dump(exclude_none=True).items()} - _COVERAGE_FIELDS
    if any(getattr(a, k) != getattr(b, k) for k in extra):
        return False
    if a.port is not None and a.port != b.port:
        return False
    if (a.ignore_uri_case or False) != (b.ignore_uri_case or False):
        return False
    return (string_covers(a.uri, b.uri) and string_covers(a.method, b.method)
            and string_covers(a.authority, b.authority) and _map_covers(a.headers, b.headers)
            and _map_covers(a.query_params, b.query_params) and (a.without_headers or {}) == (b.without_headers or {}))


def _map_covers(a: Mapping[str, StringMatch] | None, b: Mapping[str, StringMatch] | None) -> bool:
    b = b or {}
    return all(key in b and string_covers(value, b[key]) for key, value in (a or {}).items())


def string_covers(a: StringMatch | None, b: StringMatch | None) -> bool:
    """Every string `b` accepts is accepted by `a`; an absent (or empty) match accepts everything."""
    if a is None or a == StringMatch():
        return True
    if b is None:
        return False
    if a.regex is not None:
        return a == b
    if a.exact is not None:
        return b.exact == a.exact
    prefix = a.prefix or ""
    candidate = b.exact if b.exact is not None else b.prefix
    return candidate is not None and candidate.startswith(prefix)
