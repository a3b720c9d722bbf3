"""The real atdata 0.7.0b1 (in its own Python 3.12 venv) reads the fixtures it wrote, and writes.

These tests check the reference harness itself (``tests/support/atdata_reference.py``): later
compatibility tests use it to prove that shards written by atdata-lab load in real atdata.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import atdata_reference as ref

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIRS = (
    REPO_ROOT / "tests" / "fixtures" / "atdata-0.7",
    REPO_ROOT.parent / "shared" / "fixtures" / "atdata-0.7",
)

EXPERIMENT_SPEC = {
    "name": "ExperimentSample",
    "fields": [
        {"name": "measurement", "kind": "ndarray"},
        {"name": "timestamp", "kind": "float"},
        {"name": "sensor_id", "kind": "str"},
    ],
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fixtures_dir() -> Path:
    """The atdata 0.7 fixtures: the project's copy, else ``../shared/fixtures/atdata-0.7``."""
    for d in FIXTURE_DIRS:
        if (d / "expected.json").is_file() and (d / "experiment-000000.tar").is_file():
            return d
    pytest.skip(f"atdata 0.7 fixtures not found in {', '.join(str(d) for d in FIXTURE_DIRS)}")


@pytest.fixture(scope="module")
def expected(fixtures_dir: Path) -> dict:
    """``expected.json``: the decoded value of every fixture sample, in file order."""
    return json.loads((fixtures_dir / "expected.json").read_text())


@pytest.fixture(scope="module")
def atdata_python() -> Path:
    """The reference venv's interpreter (built once; skips with the reason when no 3.12)."""
    return ref.require_atdata_venv()


def test_find_python312_is_really_312():
    py = ref.find_python312()
    if py is None:
        pytest.skip("no Python 3.12 on this machine")
    assert ref._python_minor(py) == (3, 12)


def test_venv_builds_with_atdata_070b1(atdata_python: Path):
    assert atdata_python.exists()
    info = ref.venv_info()
    assert info["atdata_version"] == ref.ATDATA_VERSION
    got = ref.run_atdata_json(
        "import json, sys, importlib.metadata as m; "
        "print(json.dumps({'py': list(sys.version_info[:2]), 'atdata': m.version('atdata')}))"
    )
    assert got == {"py": [3, 12], "atdata": "0.7.0b1"}


def test_second_call_reuses_cached_venv(atdata_python: Path):
    before = (ref.venv_dir() / ref.READY_MARKER).stat().st_mtime_ns
    assert ref.ensure_atdata_venv() == atdata_python
    assert (ref.venv_dir() / ref.READY_MARKER).stat().st_mtime_ns == before


def test_run_atdata_reports_failures(atdata_python: Path):
    with pytest.raises(ref.AtdataRunError) as err:
        ref.run_atdata("import sys; print('partial'); sys.exit(3)")
    assert err.value.returncode == 3
    assert err.value.stdout.strip() == "partial"


def test_atdata_reads_experiment_shards_as_expected(atdata_python: Path, fixtures_dir: Path, expected):
    exp = expected["experiment"]
    shards = [fixtures_dir / name for name in exp["files"]]
    got = ref.read_shards_with_atdata(EXPERIMENT_SPEC, shards)
    assert len(got) == len(exp["samples"]) == 1000
    assert got == exp["samples"]


def test_atdata_reads_first_samples_of_shard0(atdata_python: Path, fixtures_dir: Path, expected):
    got = ref.read_shards_with_atdata(EXPERIMENT_SPEC, [fixtures_dir / "experiment-000000.tar"], limit=5)
    assert got == expected["experiment"]["samples"][:5]
    assert got[0]["measurement"]["dtype"] == "<f4" and got[0]["measurement"]["shape"] == [64]


def test_atdata_reads_alltypes_from_local_schema_record(atdata_python: Path, fixtures_dir: Path, expected):
    # The spec can be atdata's own local schema record (fieldType/optional), as its index stores it.
    schema = json.loads((fixtures_dir / "local_schemas.json").read_text())["AllTypes"]
    got = ref.read_shards_with_atdata(schema, [fixtures_dir / "alltypes.tar"])
    assert got == expected["alltypes"]["samples"]
    assert got[0]["mask"] is None and got[2]["mask"]["dtype"] == "|b1"
    assert got[2]["raw"] == {"bytes_hex": "0001"}


def test_atdata_reads_alltypes_from_simple_spec(atdata_python: Path, fixtures_dir: Path, expected):
    spec = {
        "name": "AllTypes",
        "fields": [
            {"name": "image", "kind": "ndarray"},
            {"name": "label", "kind": "str"},
            {"name": "count", "kind": "int"},
            {"name": "score", "kind": "float"},
            {"name": "flag", "kind": "bool"},
            {"name": "raw", "kind": "bytes"},
            {"name": "tags", "kind": "list[str]"},
            {"name": "weights", "kind": "list[float]"},
            {"name": "mask", "kind": "optional[ndarray]"},
            {"name": "note", "kind": "optional[str]"},
        ],
    }
    got = ref.read_shards_with_atdata(spec, [fixtures_dir / "alltypes.tar"], limit=7)
    assert got == expected["alltypes"]["samples"][:7]


def test_atdata_batched_read_matches(atdata_python: Path, fixtures_dir: Path, expected):
    out = ref.run_atdata_json(
        ref.READ_SCRIPT,
        "--spec",
        json.dumps(EXPERIMENT_SPEC),
        "--batch-size",
        "32",
        fixtures_dir / "experiment-000000.tar",
    )
    assert out["batch_sizes"] == [32] * 15 + [20]
    assert out["samples"] == expected["experiment"]["samples"][:500]


def test_atdata_writer_round_trips(atdata_python: Path, tmp_path: Path):
    result = ref.write_shards_with_atdata(tmp_path / "out", 120, maxcount=50)
    shards = [Path(p) for p in result["shards"]]
    assert [p.name for p in shards] == [f"experiment-{i:06d}.tar" for i in range(3)]
    assert all(p.is_file() for p in shards)
    got = ref.read_shards_with_atdata(EXPERIMENT_SPEC, shards)
    assert len(got) == 120
    assert [s["timestamp"] for s in got] == [float(i) for i in range(120)]
    assert got[7]["sensor_id"] == "sensor_3"
    assert got[0]["measurement"]["shape"] == [64]


def test_atdata_bench_reports_rates(atdata_python: Path, fixtures_dir: Path):
    out = ref.bench_atdata([fixtures_dir / "experiment-000000.tar"], n=200, repeat=1)
    assert out["atdata_version"] == "0.7.0b1"
    assert out["write"]["samples"] == 200 and out["write"]["samples_per_s"] > 0
    assert out["read"]["samples"] == 500 and out["read"]["samples_per_s"] > 0
    assert out["read_batched"]["samples"] == 500 and out["read_batched"]["batch_size"] == 32


def test_concurrent_ensure_builds_once(tmp_path: Path, monkeypatch):
    # The file lock + ready marker make parallel callers wait for one build, never race it.
    import threading
    import time

    monkeypatch.setenv("ATDATA_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ref, "find_python312", lambda: "/usr/bin/python3.12-fake")
    calls: list[str] = []

    def fake_build(python312: str, final: Path) -> None:
        calls.append(python312)
        time.sleep(0.3)
        staging = final.parent / ".staging"
        (staging / "bin").mkdir(parents=True)
        (staging / "bin" / "python").write_text("")
        marker = {"requirements": list(ref.VENV_REQUIREMENTS)}
        (staging / ref.READY_MARKER).write_text(json.dumps(marker))
        staging.rename(final)

    monkeypatch.setattr(ref, "_build", fake_build)
    results: list[tuple] = []
    threads = [threading.Thread(target=lambda: results.append(ref.atdata_venv_status())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert {r[0] for r in results} == {tmp_path / "cache" / ref.VENV_NAME / "bin" / "python"}


def test_no_python312_gives_a_skip_reason(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ATDATA_LAB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(ref, "find_python312", lambda: None)
    python, reason = ref.atdata_venv_status()
    assert python is None and "3.12" in reason
    assert ref.ensure_atdata_venv() is None
    with pytest.raises(ref.AtdataUnavailable, match="3.12"):
        ref.run_atdata("print(1)")
