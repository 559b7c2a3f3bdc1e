"""Telemetry access-log filters (`accessLogging[].filter.expression`): the CEL expression that Envoy's
envoy.access_loggers.extension_filters.cel builds when a listener loads, checked before it gets there.

Istio's webhook only parses it (pkg/config/validation validateTelemetryFilter, with cel-go); Envoy refuses more,
and a filter it refuses is a NACK of the whole listener. What Envoy 1.40 refuses beyond a syntax error, measured
on its binary (tests/validation/test_cel_envoy.py keeps every rule honest against `envoy --mode validate`):
- nesting: its CEL parser runs with max_recursion_depth 32, enforced twice (google/cel-cpp parser/parser.cc).
  ExprRecursionListener counts nested `expr` rules (parentheses, arguments, indexes, elements, a ternary's else
  branch); ParserVisitor::visit counts the tree it builds after UnnestContext (each operator, call, select and
  index is a level; parentheses are free; `a || b || c` is one level; arguments and list elements reach `visit`
  through `visitExpr`, so a ternary there is free too);
- functions: the expression builder resolves each call against its registry (CEL's builtins without string
  conversion, and the regex extension) by name, receiver style and argument count; comprehensions (all, exists,
  exists_one, map, filter) are disabled (source/extensions/filters/common/expr/evaluator.cc createBuilder);
- `matches` with a literal pattern is compiled then: RE2 syntax, and RE2 program size 100 at most;
- cel-cpp's parser rules celpy's grammar is laxer about: reserved identifiers, int and uint literals in range,
  string escapes, `!` and `-` runs on a member, has() of a field selection, 100,000 code points at most.
Those are errors; an identifier that is none of Envoy's attributes is a warning (it evaluates to an error at run
time, so the filter does not match). cel-python (celpy) parses: its lark LALR parser keeps its own stack, and the
walk here is iterative, so a pathological expression costs time linear in its size, never Python recursion.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterator

import lark

from compiler.validate import envoy_limits, fields

MAX_DEPTH = 32  # Envoy's CEL ParserOptions.max_recursion_depth
MAX_CODEPOINTS = 100_000  # cel-cpp kExpressionSizeCodepointLimit
# what Envoy's activation resolves (evaluator.cc StreamActivation::FindValue), CEL's type names and the regex
# extension's namespace (`re.extract(...)` parses as a call on an identifier `re`)
NAMES = frozenset({"request", "response", "connection", "upstream", "source", "destination", "metadata",
                   "filter_state", "upstream_filter_state", "xds",
                   "int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "google",
                   "re"})
RESERVED = frozenset({"as", "break", "const", "continue", "else", "false", "for", "function", "if", "import", "in",
                      "let", "loop", "namespace", "null", "package", "return", "true", "var", "void", "while"})
KEYWORDS = frozenset({"in", "true", "false", "null"})  # cel-cpp's lexer tokens: no field may have these names
COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_GETTERS = ("getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear", "getHours",
            "getMilliseconds", "getMinutes", "getMonth", "getSeconds")
# (name, receiver style) -> the argument counts Envoy's registry has overloads for
FUNCTIONS: dict[tuple[str, bool], frozenset[int]] = {
    **{(name, False): frozenset({1}) for name in ("size", "int", "uint", "double", "bytes", "bool", "dyn", "type",
                                                  "duration", "timestamp", "has")},
    **{(name, False): frozenset({2}) for name in ("matches", "contains", "startsWith", "endsWith", "re.capture",
                                                  "re.captureN")},
    ("re.extract", False): frozenset({3}),
    ("size", True): frozenset({0}),
    **{(name, True): frozenset({1}) for name in ("matches", "contains", "startsWith", "endsWith")},
    **{(name, True): frozenset({0, 1}) for name in _GETTERS},
}
# a valid escape, else (group 1) a backslash that starts none
_ESCAPE = re.compile(r"""\\(?:[abfnrtv"'\\?`]|[0-3][0-7]{2}|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})|(\\.?)""",
                     re.DOTALL)
_WRAPPERS = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary"})
Tree = lark.Tree[lark.Token]


class Verdict(enum.Enum):
    SYNTAX = "syntax"  # Istio's webhook rejects it too
    ENVOY = "envoy"  # Istio accepts it, Envoy refuses the listener
    WARNING = "warning"


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    verdict: Verdict
    message: str


def problems(expression: str) -> tuple[Problem, ...]:
    """What Istio's webhook or Envoy would say of the expression: its errors, else its warnings."""
    if not expression.strip():
        return (Problem(Verdict.SYNTAX, "empty: write the expression, or remove the filter to log every request"),)
    if len(expression) > MAX_CODEPOINTS:
        return (Problem(Verdict.ENVOY, f"{len(expression)} characters, over the {MAX_CODEPOINTS} Envoy's CEL "
                                       "parser takes"),)
    tree = _parse(expression)
    if isinstance(tree, Problem):
        return (tree,)
    found = tuple(_walk(tree))
    return tuple(p for p in found if p.verdict is not Verdict.WARNING) or found


def _parse(expression: str) -> Tree | Problem:
    from celpy import celparser  # on first use: celpy's import and grammar take half a second

    parser = celparser.CELParser()
    if parser.CEL_PARSER is not None and _brackets(parser.CEL_PARSER, expression) > MAX_DEPTH + 2:  # each open bracket but the innermost opens an `expr`
        return _too_nested("")
    try:
        tree: Tree = parser.parse(expression)
    except celparser.CELParseError as err:
        return Problem(Verdict.SYNTAX, f"not a CEL expression{f' at {err.line}:{err.column}' if err.line else ''}")
    return tree


def _brackets(parser: lark.Lark, expression: str) -> int:
    """The deepest nesting of brackets, by celpy's lexer (a bracket in a string is none): checked before the
    parse, as lark builds a tree of deep nesting ten times slower than a flat one (10 s for 100,000 brackets)."""
    depth = deepest = 0
    try:
        for token in parser.lex(expression):
            depth += (token.value in ("(", "[", "{")) - (token.value in (")", "]", "}"))
            deepest = max(deepest, depth)
    except lark.exceptions.LarkError:  # not even tokens: the parse says where
        return 0
    return deepest


def _too_nested(where: str) -> Problem:
    return Problem(Verdict.ENVOY, f"more than {MAX_DEPTH + 1} nested expressions (parentheses, arguments, "
                                  f"indexes, elements){where}: Envoy's CEL parser refuses it")


def _at(node: Tree | lark.Token) -> str:
    line = node.line if isinstance(node, lark.Token) else getattr(node.meta, "line", None)
    column = node.column if isinstance(node, lark.Token) else getattr(node.meta, "column", None)
    return f" at {line}:{column}" if line is not None else ""


def _walk(root: Tree) -> Iterator[Problem]:
    """Every node once, with an explicit stack of (node, cel-cpp visitor depth, `expr` rules it is inside)."""
    deep = nested = False
    stack: list[tuple[Tree, int, int]] = [(root, 1, 0)]
    while stack:
        node, depth, exprs = stack.pop()
        unit, exprs = _unnest(node, exprs)
        if exprs > MAX_DEPTH + 1 and not nested:
            nested = True
            yield _too_nested(_at(unit))
        if depth > MAX_DEPTH and not deep:
            deep = True
            yield Problem(Verdict.ENVOY, f"operators, calls and selections nested over {MAX_DEPTH} deep"
                                         f"{_at(unit)}: Envoy's CEL parser refuses it")
        yield from _rules(unit)
        stack.extend((child, depth + step, exprs) for child, step in _children(unit))


def _unnest(node: Tree, exprs: int) -> tuple[Tree, int]:
    """The node past what cel-cpp's UnnestContext skips (single-child rules, parentheses), and the `expr` rules
    counted on the way."""
    while True:
        exprs += node.data == "expr"
        kids = node.children
        if node.data in _WRAPPERS and len(kids) == 1 or node.data in ("member", "primary", "paren_expr"):
            node = kids[0]  # type: ignore[assignment]
        elif node.data == "unary" and _signed_literal(node):  # `- 1` is one literal to cel-cpp
            node = kids[1]  # type: ignore[assignment]
        else:
            return node, exprs


def _children(node: Tree) -> list[tuple[Tree, int]]:
    """The node's subtrees as cel-cpp visits them, each with the levels it adds."""
    kind = node.data
    if kind in ("conditionalor", "conditionaland"):  # a chain of || or &&: one level for all its operands
        operands: list[Tree] = []
        while node.data == kind and len(node.children) == 2:
            node, last = node.children  # type: ignore[assignment]
            operands.append(last)  # type: ignore[arg-type]
        return [(k, 1) for k in (node, *operands)]
    if kind in ("relation", "addition", "multiplication"):  # [operator(left), right]
        operator, right = node.children
        return [(operator.children[0], 1), (right, 1)]  # type: ignore[union-attr, list-item]
    if kind == "unary":  # a run of ! or - (checked by _rules): one level, its operand one more
        return [(_unary_run(node)[1], 1)]
    if kind == "member_object":  # a message: its type name is no tree, its field values are
        return [(v, 1) for inits in _subtrees(node) if inits.data == "fieldinits" for v in _subtrees(inits)]
    out: list[tuple[Tree, int]] = []
    for child in _subtrees(node):
        if child.data == "exprlist":  # arguments and list elements: through visitExpr, a ternary costs nothing
            out += [(item, 0 if len(item.children) == 3 else 1) for item in _subtrees(child)]
        elif child.data in ("mapinits", "fieldinits"):
            out += [(item, 1) for item in _subtrees(child)]
        else:
            out.append((child, 1))
    return out


def _subtrees(node: Tree | lark.Token) -> list[Tree]:
    return [c for c in node.children if isinstance(c, lark.Tree)] if isinstance(node, lark.Tree) else []


def _unary_run(node: Tree) -> tuple[list[str], Tree]:
    ops: list[str] = []
    while node.data == "unary" and len(node.children) == 2:
        op, node = node.children  # type: ignore[assignment]
        ops.append("!" if op.data == "unary_not" else "-")  # type: ignore[union-attr]
    return ops, node


def _rules(node: Tree) -> Iterator[Problem]:
    kind = node.data
    if kind in ("ident", "dot_ident"):
        yield from _identifier(node.children[0])  # type: ignore[arg-type]
    elif kind in ("ident_arg", "dot_ident_arg", "member_dot_arg"):
        yield from _call(node)
    elif kind == "literal":
        yield from _literal(node.children[0])  # type: ignore[arg-type]
    elif kind == "member_object":
        yield Problem(Verdict.ENVOY, f"a message{_at(node)}: Envoy's CEL builds only messages of the types it "
                                     "links, which meshward does not know; compare fields instead")
    if kind in ("member_dot", "member_dot_arg") and (field := node.children[1]) in KEYWORDS:
        yield Problem(Verdict.SYNTAX, f"{str(field)!r}{_at(field)} is a CEL keyword, not a field name")
    elif kind == "unary":
        ops, operand = _unary_run(node)
        if len(set(ops)) > 1 and not (set(ops[:-1]) == {"!"} and _number(operand)):
            yield Problem(Verdict.SYNTAX, f"`!` and `-` mixed{_at(node)}: CEL takes a run of one of them on an "
                                          "operand (parenthesize the inner one)")


def _identifier(token: lark.Token) -> Iterator[Problem]:
    if token.value in RESERVED:
        yield Problem(Verdict.SYNTAX, f"{token.value!r}{_at(token)} is a reserved word in CEL")
    elif token.value not in NAMES:
        yield Problem(Verdict.WARNING, f"{token.value!r}{_at(token)} is not an attribute Envoy offers: it "
                                       "evaluates to an error")


def _call(node: Tree) -> Iterator[Problem]:
    """A call resolves in Envoy's registry: (name, receiver style, argument count)."""
    token = next(c for c in node.children if isinstance(c, lark.Token))
    name: str = token.value
    args = [a for c in _subtrees(node) if c.data == "exprlist" for a in _subtrees(c)]
    receiver = _unnest(node.children[0], 0)[0] if node.data == "member_dot_arg" else None  # type: ignore[arg-type]
    if receiver is not None and receiver.data == "ident" and (f"{receiver.children[0]}.{name}", False) in FUNCTIONS:
        name, receiver = f"{receiver.children[0]}.{name}", None  # the regex extension's qualified names
    if receiver is None and name in RESERVED:
        yield Problem(Verdict.SYNTAX, f"{name!r}{_at(token)} is a reserved word in CEL")
    elif receiver is not None and name in COMPREHENSIONS and len(args) in (2, 3):
        yield Problem(Verdict.ENVOY, f"{name}(){_at(token)} is a comprehension, which Envoy's CEL disables")
    elif len(args) not in FUNCTIONS.get((name, receiver is not None), ()):
        yield Problem(Verdict.ENVOY, f"{_signature(name, receiver is not None, len(args))}{_at(token)} is not a "
                                     "function Envoy's CEL has")
    elif name == "has" and _unnest(args[0], 0)[0].data != "member_dot":
        yield Problem(Verdict.SYNTAX, f"has(){_at(token)} takes a field selection, like has(request.headers.x)")
    elif name == "matches":
        yield from _pattern(args[0] if receiver is not None else args[1])


def _signature(name: str, receiver: bool, count: int) -> str:
    return f"{'x.' if receiver else ''}{name}() with {count} argument{'' if count == 1 else 's'}"


def _pattern(arg: Tree) -> Iterator[Problem]:
    """A literal pattern is compiled when Envoy builds the expression."""
    from celpy import evaluation

    literal = _unnest(arg, 0)[0]
    token = literal.children[0] if literal.data == "literal" else None
    if not isinstance(token, lark.Token) or token.type not in ("STRING_LIT", "MLSTRING_LIT") or _bad_escape(token):
        return
    pattern = str(evaluation.celstr(token))
    problem = fields.regex(pattern) or envoy_limits.regex_program_size(pattern)
    if problem:
        yield Problem(Verdict.ENVOY, f"matches(){_at(token)}: {problem}")


def _literal(token: lark.Token) -> Iterator[Problem]:
    text = token.value
    if token.type in ("INT_LIT", "UINT_LIT"):
        digits = text.rstrip("uU")
        value = int(digits, 16) if digits.lstrip("-")[:2] in ("0x", "0X") else int(digits)
        low, high = (0, 2**64 - 1) if token.type == "UINT_LIT" else (-(2**63), 2**63 - 1)
        if not low <= value <= high:
            yield Problem(Verdict.SYNTAX, f"{text}{_at(token)} is out of the range of a CEL "
                                          f"{'uint' if token.type == 'UINT_LIT' else 'int'}")
    elif token.type in ("STRING_LIT", "MLSTRING_LIT", "BYTES_LIT") and (bad := _bad_escape(token)):
        yield Problem(Verdict.SYNTAX, f"{bad!r}{_at(token)} is not an escape sequence CEL has"
                                      f"{' in bytes' if token.type == 'BYTES_LIT' else ''}")


def _bad_escape(token: lark.Token) -> str:
    """The first backslash sequence CEL does not define (bytes take no unicode escape), in a literal not raw."""
    if token.value.lstrip("bB")[:1] in ("r", "R"):
        return ""
    unicode = ("u", "U") if token.type == "BYTES_LIT" else ()
    return next((m.group() for m in _ESCAPE.finditer(token.value) if m.group(1) or m.group()[1:2] in unicode), "")


def _signed_literal(node: Tree) -> bool:
    op, operand = node.children
    return isinstance(op, lark.Tree) and op.data == "unary_neg" and isinstance(operand, lark.Tree) and _number(operand)


def _number(node: Tree) -> bool:
    """Whether the unary operand is an int or float literal written as it is (no parentheses): cel-cpp's grammar
    gives such a literal its sign."""
    while node.data in ("unary", "member", "primary") and len(node.children) == 1:
        node = node.children[0]  # type: ignore[assignment]
    return node.data == "literal" and getattr(node.children[0], "type", "") in ("INT_LIT", "FLOAT_LIT")
