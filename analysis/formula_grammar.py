"""A closed grammar for regression formulas sent by users; the only door to patsy.

Why: patsy evaluates the terms of a formula as Python, so a formula from a web request is
code (``y ~ f"{__import__('os').system('id')}"`` runs a shell command). No deny-list over
Python tokens can be made safe. This module reads the formula with its own tokenizer and
recursive-descent parser over a small grammar and *rebuilds* a patsy formula from the parse
tree: :meth:`ParsedFormula.render` is the only text that should reach patsy. Nothing of the
input is copied into it except column names that are in the data (written bare when they
are plain identifiers, else as ``Q("name")``), decimal numbers and short string literals
limited to letters, digits, spaces and ``_ . - /``.

Grammar (``column``: a name in ``columns``, ASCII letters, digits, ``_`` and ``.``)::

    formula     := response '~' rhs
    response    := factor
    rhs         := ['-'] summand (('+' | '-') summand)*
    summand     := '0' | '1' | product                      (0 and 1: the intercept)
    product     := interaction ('*' interaction)*
    interaction := primary (':' primary)*
    primary     := '(' product (('+' | '-') product)* ')' | factor
    factor      := column | Q("column")
                 | center(column) | standardize(column) | scale(column)
                 | log(column) | log1p(column) | sqrt(column)   (rendered np.log(...) ...)
                 | C(column) | C(column, Sum) | C(column, Treatment)
                 | C(column, Treatment(reference=literal))
                 | I(column) | I(operand op operand)  one operation, at least one column:
                     op: + - * / between columns and numbers, column ** number,
                     column == != < <= > >= number, column == != "string"

Anything else (other names or calls, attribute access, keywords, quotes outside the three
places above, prefixed strings, brackets, ``**`` or ``/`` outside ``I()``, ``@``,
backslashes, control characters, non-ASCII, input over ``max_length``, nesting deeper than
``max_depth``) raises :class:`FormulaError` naming the token and its character offset.

Standard library only: ``analysis`` must stay usable without the web application.
"""

from __future__ import annotations

import difflib
import keyword
import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass

__all__ = ["FormulaError", "ParsedFormula", "parse_formula"]

_SHOWN = 40  # characters of user input echoed in a message
_NUMBER_DIGITS = 32  # longer numbers are no model's constants, only a way to stall numpy
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BARE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_STRING_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.-/")
_OPERATORS = ("**", "==", "!=", "<=", ">=", *"~+-*/:(),=<>")  # longest first
_ARITHMETIC = frozenset({"+", "-", "*", "/", "**"})
_COMPARISON = frozenset({"==", "!=", "<", "<=", ">", ">="})
# transform as written -> the function patsy calls
_TRANSFORMS = {
    "center": "center",
    "standardize": "standardize",
    "scale": "scale",
    "log": "np.log",
    "log1p": "np.log1p",
    "sqrt": "np.sqrt",
    "np.log": "np.log",  # patsy's own spelling, so a rendered formula parses again
    "np.log1p": "np.log1p",
    "np.sqrt": "np.sqrt",
}
_FUNCTIONS = ("C", "I", "Q", "center", "standardize", "scale", "log", "log1p", "sqrt")
_FUNCTION_LIST = ", ".join(f"{name}()" for name in _FUNCTIONS)


class FormulaError(ValueError):
    """The formula is outside the grammar; ``token`` and ``position`` say where.

    A ``ValueError`` (not an ``AnalysisError``) because this module imports nothing of ours.
    """

    def __init__(self, message: str, *, token: str, position: int) -> None:
        super().__init__(message)
        self.token = token
        self.position = position


@dataclass(frozen=True)
class ParsedFormula:
    """A formula that passed the grammar, kept as rendered patsy pieces.

    ``response`` and each of ``terms`` are patsy text rebuilt from the parse tree; a term
    removed with ``-`` starts with ``-`` (``"-1"`` drops the intercept). ``columns`` are the
    data columns the formula uses, in order of appearance.
    """

    response: str
    terms: tuple[str, ...]
    columns: tuple[str, ...]

    def render(self) -> str:
        """The patsy formula: the only text that should be handed to patsy."""
        parts = [self.terms[0]]
        for term in self.terms[1:]:
            parts.append(f"- {term[1:]}" if term.startswith("-") else f"+ {term}")
        return f"{self.response} ~ {' '.join(parts)}"


def parse_formula(
    text: str, columns: Collection[str], *, max_length: int = 500, max_depth: int = 20
) -> ParsedFormula:
    """Parse ``text`` against the grammar and the data's ``columns``.

    Raises :class:`FormulaError` naming the offending token for anything outside the
    grammar, a name that is not a column, input longer than ``max_length`` characters or
    parentheses and calls nested deeper than ``max_depth``.
    """
    if not isinstance(text, str):
        raise FormulaError(
            f"formula: expected text, got {type(text).__name__}", token="", position=0
        )
    if len(text) > max_length:
        raise FormulaError(
            f"formula: {_show(text)} is {len(text)} characters long, more than the limit of "
            f"{max_length}",
            token=text[:_SHOWN],
            position=max_length,
        )
    if not text.strip():
        raise FormulaError(
            "formula: expected 'response ~ term + term', got an empty formula",
            token=text,
            position=0,
        )
    _check_characters(text)
    parser = _Parser(text, _tokenize(text), frozenset(str(c) for c in columns), max_depth)
    return parser.formula()


# --- messages -------------------------------------------------------------------------


def _show(token: str) -> str:
    """The token quoted for a message, cut at ``_SHOWN`` characters."""
    if len(token) > _SHOWN:
        token = token[:_SHOWN] + "..."
    return repr(token)


def _fail(token: str, position: int, problem: str, hint: str = "") -> FormulaError:
    what = _show(token) if token else "the end of the formula"
    return FormulaError(
        f"formula: {what} {problem} (at position {position}){hint}",
        token=token,
        position=position,
    )


# --- tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "number", "string", "op", "end"
    text: str  # for strings: the content without quotes
    position: int
    end: int


def _check_characters(text: str) -> None:
    """Refuse non-ASCII and control characters before anything reads the text."""
    for position, char in enumerate(text):
        code = ord(char)
        if code > 127:
            name = unicodedata.name(char, "unnamed")
            raise _fail(
                char,
                position,
                f"(U+{code:04X} {name}) is not ASCII",
                "; formulas are ASCII only: retype the name with plain letters and digits",
            )
        if code == 127 or (code < 32 and char != "\t"):
            what = {"\n": "a line break", "\r": "a line break", "\0": "NUL"}
            raise _fail(
                char,
                position,
                f"({what.get(char, 'a control character')}) is not allowed",
                "; write the formula on one line with spaces between terms",
            )


def _tokenize(text: str) -> Iterator[_Token]:
    """Names, numbers, strings and operators, read as the parser asks for them (so the
    first offending token in reading order is the one named); anything else is refused."""
    previous: _Token | None = None
    i = 0
    while i < len(text):
        char = text[i]
        if char in " \t":
            i += 1
            continue
        if char.isdigit() or (char == "." and text[i + 1 : i + 2].isdigit()):
            match = _NUMBER.match(text, i)
            assert match is not None  # a digit, or a dot and a digit, always match
            end = match.end()
            if end < len(text) and (text[end].isalnum() or text[end] in "_."):
                stop = end
                while stop < len(text) and (text[stop].isalnum() or text[stop] in "_."):
                    stop += 1
                raise _fail(
                    text[i:stop], i, "is not a number", "; write decimal numbers such as 2 or 0.5"
                )
            if end - i > _NUMBER_DIGITS:
                raise _fail(text[i:end], i, f"is longer than {_NUMBER_DIGITS} characters")
            previous = _Token("number", match.group(), i, end)
            yield previous
            i = end
            continue
        if char.isalpha() or char == "_":
            match = _NAME.match(text, i)
            assert match is not None
            previous = _Token("name", match.group(), i, match.end())
            yield previous
            i = match.end()
            continue
        if char in "\"'":
            previous = _string(text, i, previous)
            yield previous
            i = previous.end
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, i)), None)
        if operator is None:
            raise _fail(char, i, "is not allowed in a formula", _character_hint(char))
        previous = _Token("op", operator, i, i + len(operator))
        yield previous
        i += len(operator)
    while True:  # the parser may look past the end
        yield _Token("end", "", len(text), len(text))


def _character_hint(char: str) -> str:
    if char == ".":
        return "; the operator '.' is refused: formulas cannot access attributes"
    if char in "[]{}":
        return "; brackets and braces have no use in a formula"
    return ""


def _string(text: str, start: int, previous: _Token | None) -> _Token:
    """A quoted literal of plain characters; prefixed strings (f"", b"", r"") are refused."""
    quote = text[start]
    if previous is not None and previous.kind == "name" and previous.end == start:
        raise _fail(
            text[previous.position : start + 1 + _SHOWN],
            previous.position,
            "is a prefixed string (f-string, raw or bytes), which is not allowed",
        )
    end = text.find(quote, start + 1)
    if end < 0:
        raise _fail(text[start:], start, "is a string without its closing quote")
    content = text[start + 1 : end]
    for offset, char in enumerate(content):
        if char not in _STRING_CHARS:
            raise _fail(
                char,
                start + 1 + offset,
                f"is not allowed inside the string {_show(content)}",
                "; strings may hold letters, digits, spaces and _ . - /",
            )
    return _Token("string", content, start, end + 1)


# --- parse tree rendered as it is built ------------------------------------------------


def _quote_name(name: str) -> str:
    """A column as patsy reads it: bare when a plain identifier, else ``Q("name")``."""
    if _BARE.fullmatch(name) and not keyword.iskeyword(name):
        return name  # patsy looks names up in the data first, so no builtin can shadow it
    return f'Q("{name}")'  # names hold only _NAME or _STRING_CHARS characters


def _literal(token: _Token, negative: bool = False) -> str:
    """A number or string token as Python source we wrote ourselves."""
    if token.kind == "string":
        return f'"{token.text}"'
    return f"-{token.text}" if negative else token.text


class _Parser:
    """Recursive descent over the token list; every method returns rendered patsy text."""

    def __init__(
        self, text: str, tokens: Iterator[_Token], columns: frozenset[str], max_depth: int
    ) -> None:
        self.text = text
        self.source = tokens
        self.tokens: list[_Token] = []  # read so far
        self.columns = columns
        self.max_depth = max_depth
        self.index = 0
        self.depth = 0
        self.used: list[str] = []
        self.heads: dict[str, _Token] = {}  # patsy names the rendering calls, first use

    # -- token helpers

    def peek(self, ahead: int = 0) -> _Token:
        while len(self.tokens) <= self.index + ahead:
            self.tokens.append(next(self.source))
        return self.tokens[self.index + ahead]

    def take(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def _call_follows(self) -> bool:
        following = self.peek(1)
        return following.kind == "op" and following.text == "("

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token.kind == "op" and token.text in texts

    def expect(self, text: str, expected: str) -> _Token:
        if not self.at(text):
            raise self.unexpected(self.peek(), expected)
        return self.take()

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise _fail(
                token.text,
                token.position,
                f"nests the formula deeper than {self.max_depth} levels",
                "; simplify the parentheses",
            )

    def leave(self) -> None:
        self.depth -= 1

    def unexpected(self, token: _Token, expected: str) -> FormulaError:
        """The most helpful message for a token the grammar has no place for here."""
        shown = token.text
        if token.kind == "end":
            return _fail("", token.position, f"came too early: expected {expected}")
        if token.kind == "string":
            return _fail(
                self.text[token.position : token.end],
                token.position,
                'is a string, which is only allowed as I(column == "value"), '
                'Q("column") or C(column, Treatment(reference="value"))',
            )
        if token.kind == "number":
            return _fail(
                shown,
                token.position,
                "is a number, which is only allowed as the intercept (0 or 1) or inside I()",
            )
        if token.kind == "name":
            if token.text in self.columns:
                return _fail(shown, token.position, f"is out of place: expected {expected}")
            return self.unknown_name(token)
        hints = {
            "**": "is only allowed inside I(), as I(column ** 2)",
            "/": "is only allowed inside I(), as I(column / 2)",
            ",": "is only allowed in C(column, Sum) or C(column, Treatment(...))",
            "=": "is only allowed in Treatment(reference=...)",
            "~": "is out of place: a formula has exactly one '~', after the response",
            ")": "has no matching '('",
        }
        if token.text in _COMPARISON:
            problem = "is only allowed inside I(), as I(column == 1)"
        else:
            problem = hints.get(token.text, f"is out of place: expected {expected}")
        return _fail(shown, token.position, problem)

    def unknown_name(self, token: _Token) -> FormulaError:
        """Why a name is refused: keyword, attribute of a column, or not a column."""
        name = token.text
        if keyword.iskeyword(name):
            return _fail(name, token.position, "is a Python keyword, not a column of the data")
        parts = name.split(".")
        for count in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:count])
            if prefix in self.columns:
                return _fail(
                    name[len(prefix) :],
                    token.position + len(prefix),
                    f"(the operator '.') after the column {prefix!r} is not allowed",
                    "; formulas cannot access attributes",
                )
        if name in _TRANSFORMS or name in _FUNCTIONS:
            return _fail(name, token.position, f"is a formula function: write it as {name}(column)")
        close = difflib.get_close_matches(name, sorted(self.columns), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return _fail(
            name,
            token.position,
            f"is not a column of the data nor a formula function ({_FUNCTION_LIST})",
            hint,
        )

    # -- grammar

    def formula(self) -> ParsedFormula:
        if self.at("~"):
            raise _fail(
                "~",
                self.peek().position,
                "has no response before it",
                "; write 'response ~ term + term'",
            )
        response = self.factor("a response column")
        if not self.at("~"):
            token = self.peek()
            if token.kind == "end":
                raise _fail(
                    "", token.position, "came without a '~'", "; write 'response ~ term + term'"
                )
            raise self.unexpected(token, "'~' after the response")
        self.take()
        terms = self.rhs()
        if self.peek().kind != "end":
            raise self.unexpected(self.peek(), "'+', '-', '*', ':' or the end")
        for head, token in self.heads.items():
            if head in self.columns:
                raise _fail(
                    token.text,
                    token.position,
                    f"cannot be used: the data has a column named {head!r}, which patsy "
                    "would call instead",
                    "; rename that column",
                )
        return ParsedFormula(response, tuple(terms), tuple(self.used))

    def rhs(self) -> list[str]:
        terms: list[str] = []
        sign = ""
        if self.at("-"):
            minus = self.take()
            if not (self.peek().kind == "number" and self.peek().text in {"0", "1"}):
                raise _fail(
                    "-",
                    minus.position,
                    "before a term can only remove the intercept, as -1",
                    "; write 'response ~ term - term' to remove a term",
                )
            sign = "-"
        while True:
            terms.append(sign + self.summand())
            if not self.at("+", "-"):
                return terms
            sign = "-" if self.take().text == "-" else ""

    def summand(self) -> str:
        token = self.peek()
        if token.kind == "number" and token.text in {"0", "1"}:
            self.take()
            if self.at(":", "*"):
                raise _fail(
                    self.peek().text,
                    self.peek().position,
                    "cannot combine the intercept with a term",
                )
            return token.text
        return self.product()

    def product(self) -> str:
        text = self.interaction()
        while self.at("*"):
            self.take()
            text = f"{text} * {self.interaction()}"
        return text

    def interaction(self) -> str:
        text = self.primary()
        while self.at(":"):
            self.take()
            text = f"{text}:{self.primary()}"
        return text

    def primary(self) -> str:
        if not self.at("("):
            return self.factor("a column, a formula function or '('")
        opening = self.take()
        self.enter(opening)
        parts = [self.product()]
        while self.at("+", "-"):
            parts.append(self.take().text)
            parts.append(self.product())
        self.expect(")", "')' to close the '(' at position " + str(opening.position))
        self.leave()
        return f"({' '.join(parts)})"

    def factor(self, expected: str) -> str:
        token = self.peek()
        if token.kind != "name":
            raise self.unexpected(token, expected)
        if not self._call_follows():
            return self.column(expected)
        name = token.text
        if name == "Q":
            return self.column(expected)
        if name not in _TRANSFORMS and name not in {"C", "I"}:
            if name in self.columns:
                raise _fail(name, token.position, "is a column, not a formula function")
            raise self.unknown_name(token)
        self.take()
        self.enter(self.take())
        if name == "C":
            text = self.categorical(token)
        elif name == "I":
            text = self.identity(token)
        else:
            head = _TRANSFORMS[name]
            self.heads.setdefault(head.split(".")[0], token)
            text = f"{head}({self.column('a column')})"
        self.expect(")", f"')' to close {name}(")
        self.leave()
        return text

    def column(self, expected: str) -> str:
        """A column name, bare or as Q("name"), rendered for patsy."""
        token = self.peek()
        if token.kind == "name" and token.text == "Q" and self._call_follows():
            self.take()
            self.enter(self.take())
            literal = self.peek()
            if literal.kind != "string":
                raise self.unexpected(literal, 'a quoted column name, as Q("sch.wide")')
            self.take()
            self.expect(")", "')' to close Q(")
            self.leave()
            if literal.text not in self.columns:
                raise _fail(literal.text, literal.position + 1, "is not a column of the data")
            name = literal.text
        elif token.kind == "name":
            if token.text not in self.columns:
                raise self.unknown_name(token)
            self.take()
            name = token.text
        else:
            raise self.unexpected(token, expected)
        if name not in self.used:
            self.used.append(name)
        rendered = _quote_name(name)
        if rendered.startswith("Q("):
            self.heads.setdefault("Q", token)
        return rendered

    def categorical(self, head: _Token) -> str:
        self.heads.setdefault("C", head)
        column = self.column("a column")
        if not self.at(","):
            return f"C({column})"
        self.take()
        contrast = self.peek()
        if contrast.kind != "name" or contrast.text not in {"Sum", "Treatment"}:
            raise _fail(
                contrast.text, contrast.position, "is not a contrast: expected Sum or Treatment"
            )
        self.take()
        self.heads.setdefault(contrast.text, contrast)
        if contrast.text == "Sum" or not self.at("("):
            return f"C({column}, {contrast.text})"
        self.enter(self.take())
        if self.peek().kind == "name" and self.peek().text == "reference":
            self.take()
            self.expect("=", "'=' after reference")
        level = self.signed_literal("the reference level, a number or a quoted string")
        self.expect(")", "')' to close Treatment(")
        self.leave()
        return f"C({column}, Treatment(reference={level}))"

    def signed_literal(self, expected: str) -> str:
        negative = self.at("-")
        if negative:
            self.take()
        token = self.peek()
        if token.kind == "number" or (token.kind == "string" and not negative):
            self.take()
            return _literal(token, negative)
        raise self.unexpected(token, expected)

    def identity(self, head: _Token) -> str:
        """I(...): one arithmetic or comparison step on columns and literal numbers."""
        self.heads.setdefault("I", head)
        left_token = self.peek()
        left, left_is_column = self.operand()
        if self.at(")"):
            if not left_is_column:
                raise _fail(left_token.text, left_token.position, "needs a column inside I()")
            return f"I({left})"
        operator = self.peek()
        if operator.kind != "op" or operator.text not in _ARITHMETIC | _COMPARISON:
            raise self.unexpected(operator, "an operator (+ - * / ** == != < <= > >=) or ')'")
        self.take()
        right_token = self.peek()
        right, right_is_column = self.operand(allow_string=operator.text in {"==", "!="})
        if not (left_is_column or right_is_column):
            raise _fail(operator.text, operator.position, "needs a column on one side inside I()")
        if operator.text in _COMPARISON | {"**"} and not left_is_column:
            raise _fail(
                operator.text,
                operator.position,
                "needs the column on its left inside I(), as I(column ** 2)",
            )
        if operator.text in _COMPARISON | {"**"} and right_is_column:
            raise _fail(
                right_token.text,
                right_token.position,
                f"is a column: '{operator.text}' inside I() takes a literal number on its right",
            )
        if not self.at(")"):
            raise _fail(
                self.peek().text,
                self.peek().position,
                "is out of place: I() holds one operation, as I(column ** 2)",
            )
        return f"I({left} {operator.text} {right})"

    def operand(self, allow_string: bool = False) -> tuple[str, bool]:
        """A column (bare or Q), a signed number, or a string where allowed."""
        token = self.peek()
        if token.kind == "name":
            if self._call_follows() and token.text != "Q":
                known = token.text in self.columns or token.text in _TRANSFORMS
                if known or token.text in {"C", "I"}:
                    raise _fail(
                        token.text,
                        token.position,
                        "cannot be called inside I(): it holds "
                        "one operation on columns and numbers",
                    )
                raise self.unknown_name(token)
            return self.column("a column"), True
        if token.kind == "string" and allow_string:
            self.take()
            return _literal(token), False
        if token.kind == "number" or self.at("-"):
            return self.signed_literal("a number"), False
        if self.at("("):
            raise _fail("(", token.position, "is not allowed inside I(): it holds one operation")
        raise self.unexpected(token, "a column or a number")
