"""The limits compiler/validate/envoy_limits.py enforces, proven on both sides with real Envoy: the largest value
validation accepts compiles to a bootstrap Envoy accepts, and the same bootstrap with the next value (which
validation refuses) is refused by Envoy. So a limit is neither looser than Envoy's (a NACK) nor stricter (a
valid policy refused for nothing)."""

from __future__ import annotations

from pathlib import Path

import mutations
import pytest
from judge import Judge, compiled

from compiler.validate import envoy_limits

_COMMANDS = "".join(f"%{name}%" for name in sorted(envoy_limits.COMMANDS)) + "".join(
    f"%{name}(x)%" for name in sorted(envoy_limits.COMMANDS_WITH_ARGS - {"REQ", "RESP"})
) + "%REQ(x-a?x-b):10%%RESP(x-c)%"

# (tree, file, text of the file, replaced by the value at the limit; in the bootstrap, that value, and the next one)
LIMITS = [
    ("vs-timeout-retries", "mesh.yaml", "timeout: 3s", f"timeout: {envoy_limits.MAX_DURATION_S}s",
     f'"{envoy_limits.MAX_DURATION_S}s"', f'"{envoy_limits.MAX_DURATION_S + 1}s"'),
    ("dr-connection-pool", "mesh.yaml", "time: 7200s", f"time: {envoy_limits.MAX_UINT32}s",
     f"{envoy_limits.MAX_UINT32}", f"{envoy_limits.MAX_UINT32 + 1}"),
    # the weights of one route add up to at most 2^32-1 (two destinations cannot reach it: each is an int32)
    ("vs-weighted-destinations", "mesh.yaml", "weight: 75", "weight: 2147483647", '"weight": 25',
     f'"weight": {envoy_limits.MAX_UINT32 - 2147483647 + 1}'),
    ("dr-consistent-hash", "mesh.yaml", "minimumRingSize: 2048", f"minimumRingSize: {envoy_limits.MAX_RING_SIZE}",
     f'"{envoy_limits.MAX_RING_SIZE}"', f'"{envoy_limits.MAX_RING_SIZE + 1}"'),
    ("dr-consistent-hash", "mesh.yaml", "tableSize: 65537", "tableSize: 65537", '"65537"', '"65536"'),
    ("vs-match-uri", "mesh.yaml", '"^/v[0-9]+/items/[a-z0-9-]+$"', '"x{96}"', '"x{96}"', '"x{97}"'),
    ("vs-header-operations", "mesh.yaml", "cache-control: no-store", "cache-control: '100%%'", '"100%%"', '"100%"'),
    ("vs-header-operations", "mesh.yaml", "cache-control: no-store", f"cache-control: '{_COMMANDS}'",
     '"' + _COMMANDS[:20], '"%FOO%' + _COMMANDS[:20]),
    ("vs-header-operations", "mesh.yaml", "cache-control: no-store", "cache-control: '%START_TIME%'",
     '"%START_TIME%"', '"%START_TIME"'),
    ("vs-header-operations", "mesh.yaml", "x-served-by: web", "x-served-by: web", '"x-served-by"', '"host"'),
    ("vs-header-operations", "mesh.yaml", "x-forwarded-proto: https", "x-forwarded-proto: https",
     '"x-forwarded-proto"', '":authority"'),
]


@pytest.mark.envoy
@pytest.mark.parametrize(("tree", "file", "old", "new", "at_limit", "beyond"), LIMITS,
                         ids=[f"{limit[0]}:{limit[3][:40]}" for limit in LIMITS])
def test_limit_is_envoys(judge: Judge, tree: str, file: str, old: str, new: str, at_limit: str,
                         beyond: str) -> None:
    files = dict(mutations.trees()[tree])
    assert old in files[file].decode()
    files[file] = files[file].decode().replace(old, new).encode()
    inside = compiled(judge, files)
    assert judge.verdict(inside).kind == "accepted", judge.verdict(inside).detail
    carrying = {node: text for node, text in inside.items() if at_limit in text}
    assert carrying, f"{at_limit} is in no bootstrap"
    outside = {node: text.replace(at_limit, beyond, 1) for node, text in carrying.items()}
    assert judge.verdict(outside).kind == "envoy-refused"


def test_limits_match_the_trees_they_patch() -> None:
    """The trees above are golden cases: a case edited so that the text is gone must fail here, not silently."""
    for tree, file, old, *_ in LIMITS:
        assert Path(mutations.CASES / tree / "input" / file).is_file()
        assert old in mutations.trees()[tree][file].decode()
