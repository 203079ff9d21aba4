"""Translating conditions to and from XLSForm ``relevant`` expressions (a small subset).

Supported, both ways::

    ${q} = 3     ${q} != 3     ${q} >= 3  (also >, <=, <)      -> {item: q, op: eq/ne/ge/..}
    selected(${q}, '1') or selected(${q}, '2')                 -> {item: q, op: in, values: [1, 2]}
    not(selected(${q}, '1') or selected(${q}, '2'))            -> {item: q, op: not_in, ...}
    ${q} != ''                                                 -> {item: q, op: answered}
    A and B / A or B, with parentheses                         -> {all: [...]} / {any: [...]}

Anything else (functions, arithmetic, paths, ``.``) raises :class:`RelevantSyntaxError` with
the reason; the XLSForm reader turns it into a per-row problem. Parsing is a tiny
recursive-descent parser: expressions are never evaluated as code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from questionnaires.conditions import Condition, Op

_TOKEN = re.compile(
    r"\s*(?:(?P<ref>\$\{[A-Za-z_][\w.-]*\})|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<string>'[^']*'|\"[^\"]*\")|(?P<op>!=|>=|<=|=|>|<)|(?P<punct>[(),])"
    r"|(?P<word>[A-Za-z_][\w-]*))"
)
_SYMBOL = {Op.eq: "=", Op.ne: "!=", Op.ge: ">=", Op.gt: ">", Op.le: "<=", Op.lt: "<"}
_FROM_SYMBOL = {symbol: op for op, symbol in _SYMBOL.items()}
_FLIPPED = {Op.ge: Op.le, Op.gt: Op.lt, Op.le: Op.ge, Op.lt: Op.gt, Op.eq: Op.eq, Op.ne: Op.ne}


class RelevantSyntaxError(ValueError):
    """A relevant expression is outside the supported subset; the message says why."""


def to_relevant(condition: Condition) -> str:
    """The XLSForm ``relevant`` expression for a condition."""
    return _to(condition, nested=False)


def _to(condition: Condition, *, nested: bool) -> str:
    if condition.all is not None or condition.any is not None:
        joiner = " and " if condition.all is not None else " or "
        parts = [_to(part, nested=True) for part in (condition.all or condition.any or ())]
        text = joiner.join(parts)
        return f"({text})" if nested else text
    ref = f"${{{condition.item}}}"
    if condition.op is Op.answered:
        return f"{ref} != ''"
    if condition.op in (Op.in_, Op.not_in):
        chosen = " or ".join(f"selected({ref}, '{v}')" for v in condition.values or ())
        if condition.op is Op.not_in:
            return f"not({chosen})"
        return f"({chosen})" if nested and len(condition.values or ()) > 1 else chosen
    return f"{ref} {_SYMBOL[Op(str(condition.op))]} {condition.value}"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise RelevantSyntaxError(f"unexpected text at {stripped[position:].strip()!r}")
        kind = match.lastgroup or ""
        found.append(_Token(kind, match.group(kind)))
        position = match.end()
    return found


def from_relevant(text: str) -> Condition:
    """Parse a ``relevant`` expression into a Condition; RelevantSyntaxError if unsupported."""
    parser = _Parser(_tokens(text))
    tree = parser.disjunction()
    if parser.position != len(parser.tokens):
        raise RelevantSyntaxError(f"unexpected {parser.tokens[parser.position].text!r}")
    return Condition.model_validate(tree)


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, text: str | None = None, kind: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise RelevantSyntaxError(f"expression ends early (expected {text or kind})")
        if (text is not None and token.text.lower() != text) or (
            kind is not None and token.kind != kind
        ):
            raise RelevantSyntaxError(f"expected {text or kind}, found {token.text!r}")
        self.position += 1
        return token

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() == word

    def disjunction(self) -> dict[str, Any]:
        parts = [self.conjunction()]
        while self.at_word("or"):
            self.take("or")
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else _merge_or(parts)

    def conjunction(self) -> dict[str, Any]:
        parts = [self.atom()]
        while self.at_word("and"):
            self.take("and")
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else {"all": parts}

    def atom(self) -> dict[str, Any]:
        token = self.peek()
        if token is None:
            raise RelevantSyntaxError("expression ends early")
        if token.text == "(":
            self.take("(")
            inner = self.disjunction()
            self.take(")")
            return inner
        if self.at_word("not"):
            self.take("not")
            self.take("(")
            inner = self.disjunction()
            self.take(")")
            if inner.get("op") != "in":
                raise RelevantSyntaxError("not(...) is supported only around selected(...)")
            return {**inner, "op": "not_in"}
        if self.at_word("selected"):
            self.take("selected")
            self.take("(")
            item = _ref_name(self.take(kind="ref"))
            self.take(",")
            value = _whole_number(self.take_literal())
            self.take(")")
            return {"item": item, "op": "in", "values": [value]}
        if token.kind == "ref":
            return self.comparison(_ref_name(self.take(kind="ref")))
        if token.kind in ("number", "string"):
            literal = self.take_literal()
            op = self.take(kind="op").text
            item = _ref_name(self.take(kind="ref"))
            return self.leaf(item, _FLIPPED[_FROM_SYMBOL[op]], literal)
        if token.kind == "word":
            raise RelevantSyntaxError(f"function or name {token.text!r} is not supported")
        raise RelevantSyntaxError(f"unexpected {token.text!r}")

    def take_literal(self) -> _Token:
        token = self.peek()
        if token is None or token.kind not in ("number", "string"):
            raise RelevantSyntaxError("expected a number or a quoted value")
        self.position += 1
        return token

    def comparison(self, item: str) -> dict[str, Any]:
        op = _FROM_SYMBOL[self.take(kind="op").text]
        return self.leaf(item, op, self.take_literal())

    @staticmethod
    def leaf(item: str, op: Op, literal: _Token) -> dict[str, Any]:
        if literal.kind == "string" and literal.text[1:-1] == "":
            if op is Op.ne:
                return {"item": item, "op": "answered"}
            raise RelevantSyntaxError("only \"!= ''\" (is answered) is supported with ''")
        return {"item": item, "op": op.value, "value": _whole_number(literal)}


def _merge_or(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """``selected(q,a) or selected(q,b)`` is one ``in`` on q; other ``or`` chains are ``any``."""
    items = {p.get("item") for p in parts}
    if all(p.get("op") == "in" for p in parts) and len(items) == 1:
        values = [v for p in parts for v in p["values"]]
        return {"item": parts[0]["item"], "op": "in", "values": values}
    return {"any": parts}


def _ref_name(token: _Token) -> str:
    return token.text[2:-1]


def _whole_number(token: _Token) -> int:
    text = token.text[1:-1] if token.kind == "string" else token.text
    try:
        number = float(text)
    except ValueError:
        raise RelevantSyntaxError(f"value {token.text} is not a whole-number code") from None
    if not number.is_integer():
        raise RelevantSyntaxError(f"value {token.text} is not a whole-number code")
    return int(number)
