"""Fuzzing the readers with hypothesis: only the project's errors, no hang, bounded memory.

Each reader is fuzzed in its own child process (``tests/reliability/fuzz_targets.py``) whose address
space is capped (``RLIMIT_AS`` = its size after imports + 512 MiB) and which must finish within
``TIMEOUT`` seconds. Inside, every example is checked: success or an ``AtdataLabError`` (with no
``MemoryError`` underneath), a tracemalloc peak of at most ``64 x input + 8 MiB``, and hypothesis's
per-example deadline. The examples are derandomized, so a run is reproducible; set
``ATDATA_FUZZ_EXAMPLES`` for a longer run.

Three canaries prove the checks bite: a reader that raises ``ValueError``, one that allocates 2 GiB
and one that never returns must each be reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.reliability.support import PYTHON, REPO_ROOT, child_env

EXAMPLES = int(os.environ.get("ATDATA_FUZZ_EXAMPLES", "300"))
TIMEOUT = 180
TARGETS = ["tar", "sample", "ndarray", "schema", "lexicon", "locations"]
RESULTS: dict[str, dict] = {}


def _run(target: str, examples: int, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "tests.reliability.fuzz_targets", target, "--examples", str(examples)],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("target", TARGETS)
def test_reader_raises_only_project_errors_within_memory_and_time(target):
    t0 = time.monotonic()
    proc = _run(target, EXAMPLES, TIMEOUT)
    assert proc.returncode == 0, (
        f"fuzzing {target} found a problem:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["examples"] >= min(EXAMPLES, 100)
    summary["wall"] = time.monotonic() - t0
    RESULTS[target] = summary


@pytest.mark.parametrize(
    "canary, words",
    [
        ("canary-error", "non-project error builtins.ValueError"),
        ("canary-alloc", "MemoryError"),
    ],
)
def test_the_harness_reports_a_foreign_error_and_an_unbounded_allocation(canary, words):
    proc = _run(canary, 5, 120)
    assert proc.returncode != 0 and words in proc.stdout + proc.stderr


def test_the_harness_catches_a_hang():
    with pytest.raises(subprocess.TimeoutExpired):
        _run("canary-hang", 5, 8)


def test_fuzz_matrix(report_table):
    if not RESULTS:
        pytest.skip("no fuzz target ran")
    rows = []
    for t in TARGETS:
        r = RESULTS.get(t)
        if r is None:
            rows.append((t, "-", "-", "-", "-", "-", "not run"))
            continue
        errs = ", ".join(f"{k} {v}" for k, v in sorted(r["project_errors"].items())) or "-"
        rows.append(
            (
                r["title"],
                r["examples"],
                r["ok"],
                errs,
                f"{r['max_input_bytes']:,}",
                f"{r['max_peak_bytes'] / 2**20:.1f}",
                f"{r['peak_rss_mb']:.0f}",
                r["address_space_cap_mb"],
                f"{r['seconds']:.1f}",
            )
        )
    report_table(
        f"Fuzzing ({EXAMPLES} derandomized hypothesis examples per reader, each reader in a capped child process)",
        (
            "reader",
            "examples",
            "accepted",
            "project errors raised",
            "max input B",
            "max alloc MiB",
            "peak RSS MiB",
            "RLIMIT_AS MiB",
            "seconds",
        ),
        rows,
        note="Non-project errors: 0. Hangs: 0 (per-example deadline 2 s, per-reader timeout "
        f"{TIMEOUT} s). 'max alloc' is the tracemalloc peak of one example.",
    )
