"""Reliability suites: crash matrices, faults, concurrency, bad input, secrets.

Every test here is marked ``reliability`` (added automatically below) plus the markers of the real
services it uses (``sandbox``, ``redis``, ``postgres``, ``s3``). ``make reliability`` runs them; ``make test``
runs them with everything else.

Tests report their matrices with the ``report_table`` fixture. The tables are printed at the end of
the run (a "reliability matrices" section of the terminal summary, so they show without ``-s``),
together with the duration of each suite, and are also written to
``<pytest basetemp>/reliability-report.txt``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

_TABLES = pytest.StashKey[list[str]]()
_DURATIONS = pytest.StashKey[dict[str, list[float]]]()
_OUTCOMES = pytest.StashKey[dict[str, dict[str, int]]]()
_REPORT_PATH = pytest.StashKey[Path]()
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(_HERE):
            item.add_marker(pytest.mark.reliability)


def format_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "") -> str:
    """A plain-text table: a title line, a header, a rule and one line per row."""
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    out = [title, line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    if note:
        out.append(note)
    return "\n".join(out)


@pytest.fixture(scope="session")
def report_table(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., str]:
    """``report_table(title, header, rows, note="")``: print a matrix now and in the final summary."""
    config = request.config
    path = tmp_path_factory.getbasetemp() / "reliability-report.txt"
    config.stash[_REPORT_PATH] = path

    def add(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "") -> str:
        text = format_table(title, header, rows, note)
        config.stash.setdefault(_TABLES, []).append(text)
        with open(path, "a") as f:
            f.write(text + "\n\n")
        print("\n" + text)
        return text

    return add


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    t0 = time.perf_counter()
    try:
        return (yield)
    finally:
        if Path(str(item.fspath)).resolve().is_relative_to(_HERE):
            durations = item.config.stash.setdefault(_DURATIONS, defaultdict(list))
            durations[Path(str(item.fspath)).name].append(time.perf_counter() - t0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if Path(str(item.fspath)).resolve().is_relative_to(_HERE) and (
        report.when == "call" or report.outcome != "passed"
    ):
        outcomes = item.config.stash.setdefault(_OUTCOMES, defaultdict(lambda: defaultdict(int)))
        outcomes[Path(str(item.fspath)).name][report.outcome] += 1
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    tables = config.stash.get(_TABLES, [])
    durations = config.stash.get(_DURATIONS, {})
    if not tables and not durations:
        return
    tr = terminalreporter
    tr.section("reliability matrices")
    for t in tables:
        tr.write_line(t)
        tr.write_line("")
    if durations:
        outcomes = config.stash.get(_OUTCOMES, {})
        rows = []
        for suite in sorted(durations):
            o = outcomes.get(suite, {})
            rows.append(
                (
                    suite,
                    len(durations[suite]),
                    o.get("passed", 0),
                    o.get("failed", 0),
                    o.get("skipped", 0),
                    f"{sum(durations[suite]):.1f}",
                )
            )
        rows.append(
            (
                "total",
                sum(r[1] for r in rows),
                sum(r[2] for r in rows),
                sum(r[3] for r in rows),
                sum(r[4] for r in rows),
                f"{sum(sum(d) for d in durations.values()):.1f}",
            )
        )
        tr.write_line(
            format_table(
                "Reliability suites: duration (setup + call + teardown)",
                ("suite", "tests", "passed", "failed", "skipped", "seconds"),
                rows,
            )
        )
    path = config.stash.get(_REPORT_PATH, None)
    if path is not None and tables:
        tr.write_line(f"\n(the matrices are also in {path})")
