"""Manifest queries written as JSON, turned into atdata's ``where=`` forms by either library.

Imported by our tests and by ``atdata_manifests.py`` inside the atdata 0.7 reference venv, so
both sides run exactly the same queries. Plain Python: imports neither atdata nor atdata_lab
(the caller passes its own ``F``).

:func:`make_rows` makes the samples (as JSON rows) both sides write, and :func:`brute_force`
answers a query over them in plain Python, with pandas' rules for missing values.

A query is a JSON list:

* ``["eq" | "ne" | "lt" | "le" | "gt" | "ge", field, value]``
* ``["isin", field, [values]]``, ``["between", field, low, high]``
* ``["and", q, q, ...]``, ``["or", q, q, ...]``, ``["not", q]``
* ``["lambda", name, arg]``: one of :data:`LAMBDAS`, atdata's ``where=lambda df: ...`` form.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

_CMP = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def _tags_contain(tag: str):
    # the form of atdata's manifest-queries example
    return lambda df: df["tags"].apply(lambda t: tag in t if isinstance(t, list) else False)


def _conf_over_label(args: list):
    conf, label = args
    return lambda df: (df["conf"] > conf) & (df["label"] == label)


def _over_shard_mean(field: str):
    # evaluated shard by shard (the mean is each shard's own), in both libraries
    return lambda df: df[field] > df[field].mean()


def _key_endswith(suffix: str):
    return lambda df: df["__key__"].str.endswith(suffix)


LAMBDAS = {
    "tags_contain": _tags_contain,
    "conf_over_label": _conf_over_label,
    "over_shard_mean": _over_shard_mean,
    "key_endswith": _key_endswith,
}


def to_where(spec: list, F: Any) -> Any:
    """The query as ``F`` predicates (or a lambda for ``["lambda", ...]``)."""
    op = spec[0]
    if op == "lambda":
        return LAMBDAS[spec[1]](spec[2])
    if op in _CMP:
        return _CMP[op](getattr(F, spec[1]), spec[2])
    if op == "isin":
        return getattr(F, spec[1]).isin(spec[2])
    if op == "between":
        return getattr(F, spec[1]).between(spec[2], spec[3])
    if op == "and":
        return functools.reduce(operator.and_, (to_where(s, F) for s in spec[1:]))
    if op == "or":
        return functools.reduce(operator.or_, (to_where(s, F) for s in spec[1:]))
    if op == "not":
        return ~to_where(spec[1], F)
    raise ValueError(f"unknown query {spec!r}")


QUERIES: list[list] = [
    ["eq", "label", "dog"],
    ["ne", "label", "cat"],
    ["lt", "conf", 0.3],
    ["le", "n", 10],
    ["gt", "conf", 0.9],
    ["ge", "n", 90],
    ["gt", "opt", 0.5],
    ["ne", "opt", 0.25],
    ["eq", "flag", True],
    ["isin", "label", ["bird", "fish"]],
    ["isin", "n", [1, 2, 3, 500]],
    ["between", "conf", 0.25, 0.5],
    ["not", ["eq", "label", "dog"]],
    ["and", ["gt", "conf", 0.5], ["eq", "label", "dog"]],
    ["or", ["lt", "n", 5], ["gt", "n", 95], ["eq", "label", "horse"]],
    ["not", ["or", ["lt", "conf", 0.2], ["eq", "flag", False]]],
    ["gt", "n", 1_000_000],
    ["eq", "label", "zebra"],
    ["lambda", "tags_contain", "outdoor"],
    ["lambda", "conf_over_label", [0.7, "cat"]],
    ["lambda", "over_shard_mean", "conf"],
    ["lambda", "key_endswith", "7"],
]
"""Every DSL operator, combinations, queries nothing matches, and atdata's lambda forms."""

LABELS = ["cat", "dog", "bird", "fish", "horse"]
TAGS = ["outdoor", "indoor", "closeup", "wide"]


def make_rows(n: int, seed: int = 3) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rows.append(
            {
                "pixels": rng.integers(0, 255, 12).tolist(),
                "label": LABELS[int(rng.integers(0, len(LABELS)))],
                "conf": round(float(rng.uniform(0, 1)), 3),
                "n": i,
                "flag": bool(rng.integers(0, 2)),
                "tags": [TAGS[int(j)] for j in rng.choice(len(TAGS), int(rng.integers(0, 3)), replace=False)],
                "opt": None if i % 3 == 0 else round(float(rng.uniform(0, 1)), 2),
            }
        )
    return rows


def _cmp(op: str, a, b) -> bool:
    if a is None:
        return op == "ne"  # pandas: a missing value is unequal to everything, and compares false
    return {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


def matches(spec: list, row: dict, key: str, shard_rows: list[dict]) -> bool:
    """The query evaluated on one sample in plain Python (pandas' rules for missing values)."""
    op = spec[0]
    if op in ("eq", "ne", "lt", "le", "gt", "ge"):
        return _cmp(op, row[spec[1]], spec[2])
    if op == "isin":
        return row[spec[1]] is not None and row[spec[1]] in spec[2]
    if op == "between":
        v = row[spec[1]]
        return v is not None and spec[2] <= v <= spec[3]
    if op == "and":
        return all(matches(s, row, key, shard_rows) for s in spec[1:])
    if op == "or":
        return any(matches(s, row, key, shard_rows) for s in spec[1:])
    if op == "not":
        return not matches(spec[1], row, key, shard_rows)
    name, arg = spec[1], spec[2]
    if name == "tags_contain":
        return arg in row["tags"]
    if name == "conf_over_label":
        return row["conf"] > arg[0] and row["label"] == arg[1]
    if name == "over_shard_mean":
        vals = [r[arg] for r in shard_rows if r[arg] is not None]
        return row[arg] is not None and row[arg] > sum(vals) / len(vals)
    if name == "key_endswith":
        return key.endswith(arg)
    raise AssertionError(spec)


def brute_force(spec: list, shards: list[tuple[str, list[str], list[dict]]]) -> list[tuple[str, str]]:
    """``(shard id, key)`` of every matching sample, shard by shard in file order."""
    out = []
    for shard_id, keys, rows in shards:
        out += [(shard_id, k) for k, r in zip(keys, rows) if matches(spec, r, k, rows)]
    return out
