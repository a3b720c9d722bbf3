"""Predicates as text: the Python line a predicate is (:func:`predicate_code`, :func:`query_code`)
and a small, safe parser of such lines (:func:`parse_predicate`).

The parser reads only this grammar (never ``eval``; no names, calls or attributes beyond it)::

    expr       := or
    or         := and (("or" | "|") and)*
    and        := not (("and" | "&") not)*
    not        := ("not" | "~") not | "(" expr ")" | comparison
    comparison := field op literal | field ".between(" literal "," literal ")"
                | field ".isin(" "[" literal ("," literal)* "]" ")"
    field      := "F." name | 'F["' any name '"]'
    op         := "==" | "!=" | "<" | "<=" | ">" | ">="
    literal    := number | "string" | 'string' | True | False | None

so ``F.label == "cat" and not F.score < 0.5`` and the code :func:`predicate_code` prints
(``(F.label == "cat") & ~(F.score < 0.5)``) both parse. Text is bounded (length, nesting, list
size); anything else is refused with :class:`PredicateSyntaxError`, naming where and what to write.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import InvalidArgumentError
from .predicates import COMPARISONS, F, Predicate

__all__ = ["PredicateSyntaxError", "parse_predicate", "predicate_code", "query_code"]

MAX_TEXT = 4000  # characters of a typed predicate
MAX_DEPTH = 32  # nested parentheses / not
MAX_ITEMS = 1000  # values of one isin list
_SYMBOL = {op: symbol for op, (symbol, _fn) in COMPARISONS.items()}
_OPS = {symbol: op for op, symbol in _SYMBOL.items()}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[()\[\].,&|~])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}
_HINT = (
    'write a condition like F.label == "cat", F.score > 0.5 or F.size.between(1, 10), joined with and/or/not'
)


class PredicateSyntaxError(InvalidArgumentError):
    """Text that is not a predicate this parser reads (a ``ValueError``): the message says where
    and what to write instead. Nothing of the text was run."""


# ---------------------------------------------------------------------------------------------
# printing
# ---------------------------------------------------------------------------------------------
def _literal(v: Any) -> str:
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # a numpy scalar
        v = v.item()
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return f'float("{v}")'
        return repr(v)
    if isinstance(v, str):
        text = repr(v)
        if text.startswith("'") and '"' not in v:
            text = '"' + text[1:-1].replace("\\'", "'") + '"'
        return text
    return repr(v)


def _field(name: str | None) -> str:
    name = name or ""
    return f"F.{name}" if _IDENT.match(name) and not name.startswith("_") else f"F[{_literal(name)}]"


def _between(p: Predicate) -> tuple[str, Any, Any] | None:
    """``(field, low, high)`` when ``p`` is ``F.x.between(low, high)``."""
    if p.op != "and" or len(p.parts) != 2:
        return None
    a, b = p.parts
    if a.op == "ge" and b.op == "le" and a.field == b.field and a.field is not None:
        return a.field, a.value, b.value
    return None


def _code(p: Predicate, top: bool) -> str:
    between = _between(p)
    if between is not None:
        return f"{_field(between[0])}.between({_literal(between[1])}, {_literal(between[2])})"
    if p.op in ("and", "or"):
        sep = " & " if p.op == "and" else " | "
        inner = sep.join(_code(q, False) for q in p.parts)
        return inner if top else f"({inner})"
    if p.op == "not":
        return f"~{_code(p.parts[0], False)}"
    if p.op == "isin":
        return f"{_field(p.field)}.isin([{', '.join(_literal(v) for v in p.value)}])"
    text = f"{_field(p.field)} {_SYMBOL[p.op]} {_literal(p.value)}"
    return text if top else f"({text})"


def predicate_code(predicate: Predicate) -> str:
    """``predicate`` as the Python expression that makes it: ``F.label == "cat"``,
    ``(F.score > 0.5) & F.size.between(1, 10)`` (comparisons are parenthesised inside ``&``,
    ``|`` and ``~``, which bind tighter than ``==`` in Python)."""
    if not isinstance(predicate, Predicate):
        raise InvalidArgumentError(f"predicate_code() takes a Predicate, not {type(predicate).__name__}")
    return _code(predicate, True)


def query_code(predicate: Predicate | None, dataset: str = "ds") -> str:
    """The line that finds what ``predicate`` selects: ``ds.query(where=F.label == "cat")``
    (``ds.query(where=None)`` is not a query: with no predicate, every sample, ``list(ds)``)."""
    if predicate is None:
        return f"list({dataset})"
    return f"{dataset}.query(where={predicate_code(predicate)})"


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------
def _unquote(text: str, at: int) -> str:
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise PredicateSyntaxError(
                    f"unsupported escape \\{nxt} in the string at character {at + 1}; use \\n \\t \\\\ \\' or \\\""
                )
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise PredicateSyntaxError(
                f"unexpected {text[pos]!r} at character {pos + 1} of the predicate; {_HINT}"
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group(), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    # helpers
    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def where(self) -> str:
        tok = self.peek()
        return f"at character {tok[2] + 1} ({tok[1]!r})" if tok else "at the end"

    def fail(self, what: str) -> PredicateSyntaxError:
        return PredicateSyntaxError(f"{what} {self.where()} of {self.text!r}; {_HINT}")

    def accept(self, *values: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] in ("punct", "op", "name") and tok[1] in values:
            self.i += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise self.fail(f"expected {value!r}")

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise PredicateSyntaxError(f"the predicate nests deeper than {MAX_DEPTH} levels; simplify it")

    # grammar
    def parse(self) -> Predicate:
        if not self.toks:
            raise PredicateSyntaxError(f"the predicate is empty; {_HINT}")
        p = self.or_()
        if self.peek() is not None:
            raise self.fail("unexpected text")
        return p

    def or_(self) -> Predicate:
        p = self.and_()
        while self.accept("or", "|"):
            p = p | self.and_()
        return p

    def and_(self) -> Predicate:
        p = self.not_()
        while self.accept("and", "&"):
            p = p & self.not_()
        return p

    def not_(self) -> Predicate:
        self.nest()
        try:
            if self.accept("not", "~"):
                return ~self.not_()
            if self.accept("("):
                p = self.or_()
                self.expect(")")
                return p
            return self.comparison()
        finally:
            self.depth -= 1

    def field(self) -> str:
        tok = self.peek()
        if tok is None or tok[:2] != ("name", "F"):
            raise self.fail("expected a field (F.name)")
        self.i += 1
        if self.accept("["):
            tok = self.peek()
            if tok is None or tok[0] != "str":
                raise self.fail('expected a quoted field name (F["name"])')
            self.i += 1
            self.expect("]")
            return _unquote(tok[1], tok[2])
        self.expect(".")
        tok = self.peek()
        if tok is None or tok[0] != "name" or tok[1].startswith("_"):
            raise self.fail("expected a field name after F.")
        self.i += 1
        return tok[1]

    def literal(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise self.fail("expected a value")
        kind, text, at = tok
        if kind == "num":
            self.i += 1
            if re.fullmatch(r"[-+]?\d+", text):
                if len(text) > 40:
                    raise PredicateSyntaxError(f"the number at character {at + 1} is too long")
                return int(text)
            return float(text)
        if kind == "str":
            self.i += 1
            return _unquote(text, at)
        if kind == "name" and text in ("True", "False", "None"):
            self.i += 1
            return {"True": True, "False": False, "None": None}[text]
        raise self.fail("expected a value (a number, a quoted string, True, False or None)")

    def comparison(self) -> Predicate:
        name = self.field()
        proxy = F[name]
        if self.accept("."):
            tok = self.peek()
            method = tok[1] if tok is not None and tok[0] == "name" else ""
            if method not in ("between", "isin"):
                raise self.fail("expected .between(low, high) or .isin([values])")
            self.i += 1
            self.expect("(")
            if method == "between":
                low = self.literal()
                self.expect(",")
                high = self.literal()
                self.expect(")")
                return proxy.between(low, high)
            self.expect("[")
            values = [] if self.peek() is not None and self.peek()[1] == "]" else [self.literal()]  # type: ignore[index]
            while self.accept(","):
                if len(values) >= MAX_ITEMS:
                    raise PredicateSyntaxError(f"an isin list holds at most {MAX_ITEMS} values")
                values.append(self.literal())
            self.expect("]")
            self.expect(")")
            return proxy.isin(values)
        tok = self.peek()
        if tok is None or tok[0] != "op":
            raise self.fail("expected a comparison (== != < <= > >=)")
        self.i += 1
        value = self.literal()
        after = self.peek()
        if after is not None and after[0] == "op":
            raise PredicateSyntaxError(
                f"a chained comparison {self.where()} of {self.text!r} is not read; "
                "write F.x.between(low, high), or join two comparisons with and"
            )
        return Predicate(_OPS[tok[1]], field=name, value=value)


def parse_predicate(text: str) -> Predicate:
    """The :class:`~atdata_lab.manifest.Predicate` a line of text describes (see the module for
    the grammar): ``parse_predicate('F.label == "cat" and F.score > 0.5')``. Nothing is evaluated.

    Raises:
        PredicateSyntaxError: The text is not such a predicate (a ``ValueError``), or too long.
    """
    if not isinstance(text, str):
        raise PredicateSyntaxError(f"a predicate is text, not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise PredicateSyntaxError(
            f"the predicate is {len(text):,} characters long; at most {MAX_TEXT:,} are read"
        )
    return _Parser(text).parse()
