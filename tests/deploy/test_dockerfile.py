"""The Dockerfile's promises, read from the file itself (CI has no Docker daemon): two stages, the final one
without a compiler, running `meshward serve` as a numeric non-root user with TMPDIR where the Deployment mounts a
writable volume (the root filesystem is read-only)."""

from __future__ import annotations

import json
import re
from typing import Any

import manifests
import pytest
from dockerfile_parse import DockerfileParser

_BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|cc|make|cmake|rustc|cargo|python3?-dev)\b")


@pytest.fixture(scope="module")
def stages() -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions, one list per stage."""
    out: list[list[dict[str, Any]]] = []
    for instruction in DockerfileParser(str(manifests.ROOT / "Dockerfile")).structure:
        if instruction["instruction"] == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


def _values(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [str(i["value"]) for i in stage if i["instruction"] == name]


def test_multi_stage_and_the_final_stage_takes_only_the_built_virtualenv(stages: list[list[dict[str, Any]]]) -> None:
    assert len(stages) >= 2
    final = stages[-1]
    assert "slim" in _values(final, "FROM")[0]
    copies = _values(final, "COPY")
    assert copies and all(c.startswith("--from=") for c in copies), "no source tree in the final image"


def test_no_compiler_in_the_final_stage(stages: list[list[dict[str, Any]]]) -> None:
    assert any(_BUILD_TOOLS.search(run) for stage in stages[:-1] for run in _values(stage, "RUN")), \
        "the check itself sees the build stage's compiler"
    assert not [run for run in _values(stages[-1], "RUN") if _BUILD_TOOLS.search(run)]


def test_runs_serve_as_a_numeric_non_root_user(stages: list[list[dict[str, Any]]]) -> None:
    user = _values(stages[-1], "USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, "runAsNonRoot needs a numeric id"
    assert json.loads(_values(stages[-1], "ENTRYPOINT")[-1]) == ["meshward", "serve"]


def test_writes_go_to_the_deployments_writable_volume(stages: list[list[dict[str, Any]]]) -> None:
    env = " ".join(_values(stages[-1], "ENV"))
    tmpdir = re.search(r"\bTMPDIR=(\S+)", env)
    assert tmpdir is not None and "PYTHONDONTWRITEBYTECODE=1" in env
    mounts = {m["mountPath"] for m in manifests.container()["volumeMounts"]}
    assert tmpdir.group(1) in mounts
