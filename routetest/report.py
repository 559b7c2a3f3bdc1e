"""`meshward test`'s output: text lines, JUnit XML (CI systems' test reports), GitHub workflow annotations at the
failing test case's line, or JSON. Diagnostics (a bad test file, a policy that does not compile) go through the
compiler's own renderers (`compiler.output`), in the same format where it has one."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import IO, Any

from compiler import output
from routetest.coverage import Coverage
from routetest.run import CallResult, CaseResult, Outcome

FORMATS = ("text", "junit", "github", "json")


def render(outcome: Outcome, fmt: str, stream: IO[str], *, show_coverage: bool) -> None:
    if fmt == "junit":
        stream.write(junit(outcome.results))
        return
    if fmt == "json":
        stream.write(json.dumps(as_dict(outcome, show_coverage), indent=2, sort_keys=True) + "\n")
        return
    output.render(outcome.diagnostics, "github" if fmt == "github" else "text", stream)
    for result in outcome.results:
        stream.write("".join(_text(result) if fmt == "text" else _github(result)))
    if outcome.results or not outcome.errors:
        stream.write(summary(outcome.results) + "\n")
    if show_coverage and outcome.coverage is not None:
        stream.write(coverage_text(outcome.coverage))


def summary(results: Sequence[CaseResult]) -> str:
    failed = sum(not r.passed for r in results)
    requests = sum(len(r.calls) for r in results)
    return f"{len(results)} tests ({requests} requests): {len(results) - failed} passed, {failed} failed"


def _where(result: CaseResult) -> str:
    return f"{result.case.position.file}:{result.case.position.line}"


def _text(result: CaseResult) -> list[str]:
    reached = sorted({c.reached for c in result.calls if c.reached})
    head = f"{'PASS' if result.passed else 'FAIL'} {_where(result)} {result.case.name}"
    lines = [head + (f" -> {'; '.join(reached)}" if result.passed and reached else "") + "\n"]
    lines.extend(f"    {problem}\n" for problem in _problems(result))
    return lines


def _problems(result: CaseResult) -> list[str]:
    out = [f"{call.call}: {problem} [reached {call.reached or 'nothing'}]"
           for call in result.calls for problem in call.problems]
    return out + list(result.problems)


def _github(result: CaseResult) -> list[str]:
    if result.passed:
        return []
    pos = result.case.position
    message = output._escape_data("\n".join(_problems(result)))
    title = output._escape_property(f"meshward test: {result.case.name}")
    return [(f"::error file={output._escape_property(pos.file)},line={max(pos.line, 1)},"
             f"title={title}::{message}\n")]


def coverage_text(cov: Coverage) -> str:
    lines = [f"route coverage: {len(cov.hit())}/{len(cov.routes)} VirtualService routes ({cov.percent:.1f}%)\n"]
    lines.extend(f"  not reached: {route}\n" for route in cov.missed())
    return "".join(lines)


def junit(results: Sequence[CaseResult]) -> str:
    suites = ET.Element("testsuites", name="meshward test", tests=str(len(results)),
                        failures=str(sum(not r.passed for r in results)))
    by_file: dict[str, list[CaseResult]] = {}
    for result in results:
        by_file.setdefault(result.case.position.file, []).append(result)
    for file, group in by_file.items():
        suite = ET.SubElement(suites, "testsuite", name=file, tests=str(len(group)),
                              failures=str(sum(not r.passed for r in group)))
        for result in group:
            case = ET.SubElement(suite, "testcase", name=result.case.name, classname=file, file=file,
                                 line=str(result.case.position.line))
            if not result.passed:
                problems = _problems(result)
                failure = ET.SubElement(case, "failure", message=problems[0])
                failure.text = "\n".join(problems)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def as_dict(outcome: Outcome, show_coverage: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "diagnostics": [output._as_dict(d) for d in outcome.diagnostics],
        "tests": [{"file": r.case.position.file, "line": r.case.position.line, "description": r.case.name,
                   "proxy": r.proxy, "passed": r.passed, "problems": list(r.problems),
                   "requests": [_call(c) for c in r.calls]} for r in outcome.results],
        "summary": summary(outcome.results),
    }
    if show_coverage and outcome.coverage is not None:
        cov = outcome.coverage
        out["coverage"] = {"percent": round(cov.percent, 1), "routes": len(cov.routes), "reached": len(cov.hit()),
                           "not_reached": [{"file": r.position.file, "line": r.position.line,
                                            "virtual_service": r.resource, "route": r.name or r.key[2]}
                                           for r in cov.missed()]}
    return out


def _call(call: CallResult) -> dict[str, Any]:
    return {"request": str(call.call), "reached": call.reached, "problems": list(call.problems)}
