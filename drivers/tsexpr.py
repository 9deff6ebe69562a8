"""TunerStudio ini expressions (``{ coolantRaw - 40 }``): parse once, evaluate per sample.

An ECU's ``.ini`` defines some output channels as C-like expressions over other
channels (Speeduino: ``coolant = { coolantRaw - 40 }``) or over tune constants and
functions TunerStudio evaluates (``lambda = { afr / stoich }``,
``arrayValue(...)``). We evaluate the first kind, which only needs the realtime
block, and report the second kind as not read: the tune is not downloaded.

The grammar is C's expression grammar as TunerStudio uses it: numbers, names,
``?:``, ``|| && | ^ & == != < <= > >= << >> + - * / %``, unary ``- + ! ~``,
parentheses and calls ``f(a, b)``. Evaluation is on floats; comparisons and logic
give 1.0/0.0; a division by zero gives NaN rather than an exception.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Node = tuple[Any, ...]
"""Parse tree: ("num", v) ("name", n) ("un", op, a) ("bin", op, a, b) ("if", c, a, b) ("call", f, args)."""

_TOKEN = re.compile(
    r"\s*(?:(0[xX][0-9a-fA-F]+)"
    r"|(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|([A-Za-z_][A-Za-z0-9_.]*)"
    r"|(<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%()?:!~&|^<>,]))"
)
_BINARY_PRECEDENCE = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
    "<": 7, "<=": 7, ">": 7, ">=": 7, "<<": 8, ">>": 8,
    "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}  # fmt: skip


class ExprError(ValueError):
    """An expression that does not parse."""


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed expression with the names and functions it refers to."""

    text: str
    tree: Node
    names: frozenset[str]
    functions: frozenset[str]

    @property
    def constant(self) -> bool:
        return not self.names and not self.functions

    def evaluate(self, env: Mapping[str, float]) -> float:
        """Value with ``env`` giving every name (a missing name raises KeyError)."""
        return _eval(self.tree, env)


def parse_expr(text: str) -> Expr:
    """Parse an expression (without its braces); raises :class:`ExprError`."""
    tokens = _tokenize(text)
    parser = _Parser(tokens, text)
    tree = parser.ternary()
    if parser.pos != len(tokens):
        raise ExprError(f"unexpected {tokens[parser.pos][1]!r} in {{{text}}}")
    names: set[str] = set()
    functions: set[str] = set()
    _collect(tree, names, functions)
    return Expr(text.strip(), tree, frozenset(names), frozenset(functions))


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ExprError(f"cannot read {text[pos:].strip()[:20]!r} in {{{text.strip()}}}")
        hexnum, num, name, op = m.groups()
        if hexnum is not None:
            tokens.append(("num", str(int(hexnum, 16))))
        elif num is not None:
            tokens.append(("num", num))
        elif name is not None:
            tokens.append(("name", name))
        else:
            tokens.append(("op", op))
        pos = m.end()
    if not tokens:
        raise ExprError("empty expression {}")
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.pos = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, op: str) -> None:
        tok = self._peek()
        if tok != ("op", op):
            found = "the end" if tok is None else repr(tok[1])
            raise ExprError(f"expected {op!r} but found {found} in {{{self.text.strip()}}}")
        self.pos += 1

    def ternary(self) -> Node:
        cond = self.binary(1)
        if self._peek() == ("op", "?"):
            self.pos += 1
            a = self.ternary()
            self._take(":")
            b = self.ternary()
            return ("if", cond, a, b)
        return cond

    def binary(self, min_prec: int) -> Node:
        left = self.unary()
        while True:
            tok = self._peek()
            if tok is None or tok[0] != "op" or tok[1] not in _BINARY_PRECEDENCE:
                return left
            prec = _BINARY_PRECEDENCE[tok[1]]
            if prec < min_prec:
                return left
            self.pos += 1
            right = self.binary(prec + 1)
            left = ("bin", tok[1], left, right)

    def unary(self) -> Node:
        tok = self._peek()
        if tok is not None and tok[0] == "op" and tok[1] in ("-", "+", "!", "~"):
            self.pos += 1
            return ("un", tok[1], self.unary())
        return self.primary()

    def primary(self) -> Node:
        tok = self._peek()
        if tok is None:
            raise ExprError(f"expression ends too early: {{{self.text.strip()}}}")
        self.pos += 1
        kind, value = tok
        if kind == "num":
            return ("num", float(value))
        if kind == "name":
            if self._peek() == ("op", "("):
                self.pos += 1
                args: list[Node] = []
                if self._peek() != ("op", ")"):
                    args.append(self.ternary())
                    while self._peek() == ("op", ","):
                        self.pos += 1
                        args.append(self.ternary())
                self._take(")")
                return ("call", value, tuple(args))
            return ("name", value)
        if value == "(":
            inner = self.ternary()
            self._take(")")
            return inner
        raise ExprError(f"unexpected {value!r} in {{{self.text.strip()}}}")


def _collect(node: Node, names: set[str], functions: set[str]) -> None:
    kind = node[0]
    if kind == "name":
        names.add(str(node[1]))
    elif kind == "call":
        functions.add(str(node[1]))
        for arg in node[2]:
            _collect(arg, names, functions)
    elif kind == "un":
        _collect(node[2], names, functions)
    elif kind == "bin":
        _collect(node[2], names, functions)
        _collect(node[3], names, functions)
    elif kind == "if":
        for part in node[1:]:
            _collect(part, names, functions)


def _int(x: float) -> int:
    return int(x) if math.isfinite(x) else 0


def _binop(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b if b != 0 else math.nan
    if op == "%":
        return math.fmod(a, b) if b != 0 else math.nan
    if op in ("<<", ">>", "&", "|", "^"):
        x, y = _int(a), _int(b)
        if op == "<<":
            return float(x << y) if 0 <= y < 64 else math.nan
        if op == ">>":
            return float(x >> y) if 0 <= y < 64 else math.nan
        return float(x & y if op == "&" else x | y if op == "|" else x ^ y)
    if op == "&&":
        return float(bool(a) and bool(b))
    if op == "||":
        return float(bool(a) or bool(b))
    compare = {
        "==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b,
    }  # fmt: skip
    return float(compare[op])


def _eval(node: Node, env: Mapping[str, float]) -> float:
    kind = node[0]
    if kind == "num":
        return float(node[1])
    if kind == "name":
        return float(env[str(node[1])])
    if kind == "un":
        op, value = node[1], _eval(node[2], env)
        if op == "-":
            return -value
        if op == "!":
            return float(not value)
        if op == "~":
            return float(~_int(value))
        return value
    if kind == "bin":
        a = _eval(node[2], env)
        b = _eval(node[3], env)
        return _binop(str(node[1]), a, b)
    if kind == "if":
        cond = _eval(node[1], env)
        return _eval(node[2] if cond else node[3], env)
    raise KeyError(f"function {node[1]}()")
