"""Predicates as text: the code line a predicate prints as, and the small parser of such lines
(never eval: anything outside its grammar is refused with a message that says what to write)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atdata_lab.errors import AtdataLabError
from atdata_lab.manifest import F
from atdata_lab.manifest.predicate_text import (
    MAX_DEPTH,
    MAX_TEXT,
    PredicateSyntaxError,
    parse_predicate,
    predicate_code,
    query_code,
)
from atdata_lab.manifest.selection import predicate_matches

DF = pd.DataFrame(
    {
        "label": ["cat", "dog", "cat", None, 'say "hi"'],
        "score": [0.1, 0.5, 0.9, np.nan, 0.7],
        "n": [1, 2, 3, 4, 5],
        "odd name": [True, False, True, False, True],
    }
)


def mask(p):
    return p(DF).fillna(False).astype(bool).tolist()


@pytest.mark.parametrize(
    "pred, code",
    [
        (F.label == "cat", 'F.label == "cat"'),
        (F.score > 0.5, "F.score > 0.5"),
        (F.n != 3, "F.n != 3"),
        (F.score.between(0.1, 0.5), "F.score.between(0.1, 0.5)"),
        (F.label.isin(["cat", "dog"]), 'F.label.isin(["cat", "dog"])'),
        ((F.label == "cat") & (F.score >= 0.5), '(F.label == "cat") & (F.score >= 0.5)'),
        ((F.n < 2) | ~(F.label == "dog"), '(F.n < 2) | ~(F.label == "dog")'),
        (((F.n < 2) | (F.n > 4)) & (F.score < 1), "((F.n < 2) | (F.n > 4)) & (F.score < 1)"),
        (F["odd name"] == True, 'F["odd name"] == True'),  # noqa: E712
        (F.label == 'say "hi"', "F.label == 'say \"hi\"'"),
        (F.label == None, "F.label == None"),  # noqa: E711
        (F.n == np.int64(3), "F.n == 3"),
    ],
)
def test_code_is_python_that_makes_the_same_predicate(pred, code):
    assert predicate_code(pred) == code
    # the printed line is real Python giving the same mask, and the parser reads it back
    again = eval(code, {"F": F})  # the test's own trusted text, to prove the line is Python
    assert mask(again) == mask(pred)
    parsed = parse_predicate(code)
    assert predicate_code(parsed) == code and mask(parsed) == mask(pred)


def test_query_code_line():
    assert query_code(F.label == "cat") == 'ds.query(where=F.label == "cat")'
    assert query_code((F.n > 1) & (F.n < 3), "train") == "train.query(where=(F.n > 1) & (F.n < 3))"
    assert query_code(None) == "list(ds)"


@pytest.mark.parametrize(
    "text, expected",
    [
        ('F.label == "cat"', [True, False, True, False, False]),
        ("F.label == 'cat' and F.score > 0.5", [False, False, True, False, False]),
        ("F.n <= 2 or F.n >= 5", [True, True, False, False, True]),
        ("not F.label == 'cat'", [False, True, False, True, True]),
        ("not (F.n < 3 or F.n > 4)", [False, False, True, True, False]),
        ("F.score.between(0.5, 0.9)", [False, True, True, False, True]),
        ("F.label.isin(['dog', 'cat'])", [True, True, True, False, False]),
        ('F["odd name"] == True and F.n > -1.5e0', [True, False, True, False, True]),
        ("(F.n == 1) | (F.n == 2) & (F.score > 0.4)", [True, True, False, False, False]),  # & binds tighter
        ("F.n == 1 or F.n == 2 and F.score > 0.4", [True, True, False, False, False]),  # and binds tighter
        ("~(F.n > 1)", [True, False, False, False, False]),
        ('F.label == "say \\"hi\\""', [False, False, False, False, True]),
    ],
)
def test_parse(text, expected):
    assert mask(parse_predicate(text)) == expected


@pytest.mark.parametrize(
    "text, says",
    [
        ('__import__("os").system("touch /tmp/pwned")', "expected a field (F.name) at character 1"),
        ("F.label.__class__.__subclasses__()", "expected .between(low, high) or .isin([values])"),
        ("F.__class__ == 1", "expected a field name after F."),
        ("F.n == len('x')", "expected a value"),
        ("F.n == n", "expected a value"),
        ("open('/etc/passwd')", "expected a field"),
        ("F.n == 1; import os", "unexpected ';'"),
        ("F.n == 1 == 1", "a chained comparison"),
        ("1 < F.n", "expected a field"),
        ("F.n == 1 and", "expected a field (F.name) at the end"),
        ("(F.n == 1", "expected ')' at the end"),
        ("F.n == 1)", "unexpected text at character 9"),
        ("F.label == 'x\\q'", "unsupported escape"),
        ("", "the predicate is empty"),
        ("F.n == 1 " + "and F.n == 1 " * 400, f"at most {MAX_TEXT:,} are read"),
        ("(" * (MAX_DEPTH + 1) + "F.n == 1" + ")" * (MAX_DEPTH + 1), f"deeper than {MAX_DEPTH} levels"),
        ("F.n == lambda: 1", "unexpected ':' at character 14"),
        ("F.n == [1]", "expected a value"),
    ],
)
def test_refused_with_a_clear_message(text, says):
    with pytest.raises(PredicateSyntaxError) as info:
        parse_predicate(text)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AtdataLabError)
    assert says in str(info.value)
    # and says what to do instead
    assert any(w in str(info.value) for w in ("write", "use \\n", "at most", "simplify")), str(info.value)


def test_nothing_is_evaluated(monkeypatch):
    import builtins

    def no(*_a, **_k):
        raise AssertionError("the parser must not evaluate text")

    monkeypatch.setattr(builtins, "eval", no)
    monkeypatch.setattr(builtins, "exec", no)
    monkeypatch.setattr(builtins, "compile", no)
    assert (
        predicate_code(parse_predicate("F.a == 1 and not F.b.isin(['x'])")) == '(F.a == 1) & ~F.b.isin(["x"])'
    )


def test_not_text():
    with pytest.raises(PredicateSyntaxError, match="a predicate is text, not int"):
        parse_predicate(3)  # type: ignore[arg-type]


def test_predicate_matches_one_sample_as_its_manifest_row():
    rows = DF.to_dict("records")
    for p in [
        F.label == "cat",
        (F.score > 0.4) & ~(F.n == 3),
        F.label.isin(["dog"]) | (F.n >= 5),
        F.label != "cat",
        F.score.between(0.1, 0.7),
    ]:
        got = [
            predicate_matches(
                p, {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            )
            for r in rows
        ]
        assert got == mask(p), predicate_code(p)
    assert predicate_matches(F.label < 3, {"label": "x"}) is False  # does not compare: no match
