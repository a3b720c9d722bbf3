"""The notebooks in ``notebooks/``: each one a tutorial and a test.

* Each notebook runs top to bottom under nbval (``--nbval-lax``) in a pytest subprocess that owns
  nothing but the kernel; this test owns the services (Redis, S3) and passes them through the env.
* Cells whose output matters say ``# NBVAL_CHECK_OUTPUT``. Notebooks are committed WITHOUT outputs,
  so the expected output of those cells is kept in the cell's metadata
  (``metadata.atdata.expected_outputs``); the test writes a reference copy with those outputs
  filled in and nbval compares against it (through ``notebooks/nbval-sanitize.cfg``).
* Every output nbval saw is collected (a tiny plugin in the subprocess) and scanned for secrets.

Refresh the expectations after changing a checked cell (this rewrites the committed notebooks'
metadata, never their outputs)::

    ATDATA_NOTEBOOKS_RECORD=1 .venv/bin/python -m pytest tests/test_notebooks.py -m slow

Strip a notebook saved with outputs (outputs, execution counts and timing, widget state; the
recorded expectations stay)::

    .venv/bin/python -m tests.test_notebooks --strip notebooks/04-widgets-tour.ipynb
"""

from __future__ import annotations

import configparser
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SANITIZE = NOTEBOOKS / "nbval-sanitize.cfg"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
META = "atdata"  # cell.metadata["atdata"]["expected_outputs"]
RECORD = os.environ.get("ATDATA_NOTEBOOKS_RECORD") == "1"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
# what generate_password() and Bluesky app passwords look like: xxxx-xxxx-xxxx-xxxx
PASSWORD_SHAPE = re.compile(r"\b[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}\b")
NBVAL_TIMEOUT_S = 600
# metadata.language_info as ipykernel reports it (JupyterLab writes it on opening, and marks the
# notebook modified when it differs), besides "version" (the kernel's Python)
KERNEL_LANGUAGE = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}

# Loaded by the nbval subprocess (written next to the notebooks as its conftest.py): appends every
# cell's outputs, as nbval received them, to $ATDATA_NBVAL_OUTPUTS (JSON lines).
_COLLECTOR = textwrap.dedent("""
    import json, os

    def pytest_runtest_makereport(item, call):
        outs = getattr(item, "test_outputs", None)
        if call.when != "call" or outs is None:
            return
        with open(os.environ["ATDATA_NBVAL_OUTPUTS"], "a") as fh:
            fh.write(json.dumps({"notebook": item.fspath.basename, "cell": item.cell_num,
                                 "source": item.cell.source, "outputs": outs}, default=str) + "\\n")
""")


def committed_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def is_checked(cell: Any) -> bool:
    return cell.cell_type == "code" and CHECK_MARK in cell.source


def sanitize_patterns() -> list[tuple[str, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SANITIZE)
    return [(parser[s]["regex"], parser[s]["replace"]) for s in parser.sections()]


def sanitize(text: str) -> str:
    for regex, replace in sanitize_patterns():
        text = re.sub(regex, replace, text)
    return text


def reference_copy(src: Path, dest_dir: Path, *, with_expectations: bool = True) -> Path:
    """A copy of ``src`` where each checked cell carries its expected outputs (nbval compares only
    cells that have an execution count; all others just run)."""
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        expected = cell.metadata.get(META, {}).get("expected_outputs")
        if with_expectations and is_checked(cell):
            if expected is None:
                raise AssertionError(
                    f"{src.name}: a checked cell has no recorded expected output "
                    f"(run with ATDATA_NOTEBOOKS_RECORD=1):\n{cell.source[:200]}"
                )
            cell.outputs = [nbformat.from_dict(o) for o in expected]
            cell.execution_count = 1
        else:
            cell.outputs = []
            cell.execution_count = None
    dest = dest_dir / src.name
    nbformat.write(nb, dest)
    return dest


def kernel_env(tmp: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the nbval subprocess and so of its kernel: this test's (incl. its own
    ATDATA_HOME), Jupyter/IPython state in temp dirs, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JUPYTER_", "JPY_"))}
    for name in ("ipython", "jupyter-runtime", "mpl"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    env.update(
        IPYTHONDIR=str(tmp / "ipython"),
        JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"),
        MPLCONFIGDIR=str(tmp / "mpl"),
        PYTHONUNBUFFERED="1",
        ATDATA_NBVAL_OUTPUTS=str(tmp / "outputs.jsonl"),
    )
    env.update(extra or {})
    return env


class NbvalRun:
    def __init__(self, proc: subprocess.CompletedProcess, outputs: list[dict], seconds: float):
        self.proc = proc
        self.outputs = outputs
        self.seconds = seconds

    @property
    def ok(self) -> bool:
        return self.proc.returncode == 0

    @property
    def report(self) -> str:
        return (self.proc.stdout + self.proc.stderr)[-12000:]

    def text(self, notebook: str | None = None) -> str:
        """Every output of every cell (of ``notebook``), as one string."""
        return json.dumps([r["outputs"] for r in self.outputs if notebook in (None, r["notebook"])])

    def cell_text(self, notebook: str, contains: str) -> str:
        """The stream/plain-text output of the cell whose source contains ``contains``."""
        for r in self.outputs:
            if r["notebook"] == notebook and contains in r["source"]:
                parts = []
                for o in r["outputs"]:
                    parts.append(
                        o.get("text") or (o.get("data") or {}).get("text/plain", "") or o.get("evalue", "")
                    )
                return "".join(parts)
        raise KeyError(f"no cell of {notebook} contains {contains!r}")


def run_nbval(
    notebooks: list[Path],
    workdir: Path,
    env: dict[str, str],
    *,
    python: str = sys.executable,
    prefix: tuple[str, ...] = (),
) -> NbvalRun:
    """Run nbval (lax) on ``notebooks`` (already in ``workdir``) in a fresh pytest process rooted
    at ``workdir`` (so this repo's conftest and plugins stay out of it), with ``python``, through
    ``prefix`` (a command that execs the rest, such as ``binder/start``)."""
    (workdir / "pytest.ini").write_text("[pytest]\naddopts =\n")
    (workdir / "conftest.py").write_text(_COLLECTOR)
    Path(env["ATDATA_NBVAL_OUTPUTS"]).unlink(missing_ok=True)
    cmd = [
        *prefix,
        python,
        "-m",
        "pytest",
        "-c",
        str(workdir / "pytest.ini"),
        "--rootdir",
        str(workdir),
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-sanitize-with={SANITIZE}",
        f"--nbval-cell-timeout={NBVAL_TIMEOUT_S}",
        "-q",
        "-rfE",
        "--color=no",
        *[str(nb) for nb in notebooks],
    ]
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=NBVAL_TIMEOUT_S + 120
    )
    seconds = time.monotonic() - t0
    out_file = Path(env["ATDATA_NBVAL_OUTPUTS"])
    outputs = [json.loads(line) for line in out_file.read_text().splitlines()] if out_file.exists() else []
    return NbvalRun(proc, outputs, seconds)


def record_expectations(src: Path, run: NbvalRun) -> None:
    """Store the outputs of ``src``'s checked cells from ``run`` in the committed notebook."""
    nb = nbformat.read(src, as_version=4)
    by_source = {r["source"]: r["outputs"] for r in run.outputs if r["notebook"] == src.name}
    for cell in nb.cells:
        if not is_checked(cell):
            continue
        outs = by_source.get(cell.source)
        if outs is None:
            raise AssertionError(f"{src.name}: no output recorded for a checked cell:\n{cell.source[:200]}")
        kept = []
        for o in outs:
            if o["output_type"] != "stream":
                raise AssertionError(
                    f"{src.name}: checked cells must only print (got {o['output_type']}):\n"
                    f"{cell.source[:200]}"
                )
            kept.append({"output_type": "stream", "name": o["name"], "text": sanitize(o["text"])})
        cell.metadata.setdefault(META, {})["expected_outputs"] = kept
    nbformat.write(nb, src)


def run_notebook(
    name: str, tmp_path: Path, extra_env: dict[str, str] | None = None, *, compare: bool = True
) -> NbvalRun:
    """Run ``notebooks/<name>`` under nbval; compare the checked cells (or, in record mode, record
    them). Fails the test with nbval's report when a cell raises or an output differs."""
    src = NOTEBOOKS / name
    workdir = tmp_path / "nbval"
    workdir.mkdir(parents=True, exist_ok=True)
    ref = reference_copy(src, workdir, with_expectations=compare and not RECORD)
    run = run_nbval([ref], workdir, kernel_env(tmp_path / "kernel-state", extra_env))
    print(f"\n{name}: nbval {'passed' if run.ok else 'FAILED'} in {run.seconds:.1f} s")
    assert run.ok, f"nbval failed on {name}:\n{run.report}"
    assert run.outputs, f"no cell outputs were collected from {name}:\n{run.report}"
    if RECORD and compare:
        record_expectations(src, run)
    assert not PASSWORD_SHAPE.search(run.text()), f"{name}: a password-shaped secret reached the outputs"
    return run


# ------------------------------------------------------------------------------------------------
# the committed notebooks
# ------------------------------------------------------------------------------------------------
def strip_notebook(path: Path) -> None:
    """Remove outputs, execution counts, execution timing and widget state from ``path`` in place
    (the expectations recorded in ``metadata.atdata`` stay)."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, path)


def notebook_problems(paths: list[Path]) -> list[str]:
    """What is wrong with committed notebooks: outputs, execution counts, widget state, checked cells
    without a recorded expectation (or expectations on unchecked cells), password-shaped strings."""
    problems = []
    for path in paths:
        raw = path.read_text()
        nb = nbformat.reads(raw, as_version=4)
        nbformat.validate(nb)
        if "widgets" in nb.metadata or WIDGET_STATE_MIME in raw:
            problems.append(f"{path.name}: has saved widget state (metadata.widgets)")
        if nb.metadata.get("kernelspec", {}).get("name") != "python3":
            problems.append(f"{path.name}: kernelspec is not python3")
        # JupyterLab marks a notebook modified on opening unless language_info is the kernel's, whole
        language = dict(nb.metadata.get("language_info", {}))
        if not language.pop("version", None) or language != KERNEL_LANGUAGE:
            problems.append(f"{path.name}: language_info is not ipykernel's in full, with its version")
        checked = 0
        stored = json.loads(raw)["cells"]
        for i, cell in enumerate(nb.cells):
            where = f"{path.name} cell {i}"
            if not stored[i].get("id"):  # JupyterLab gives it one on opening: the notebook reads modified
                problems.append(f"{where}: has no id")
            if cell.cell_type != "code":
                if cell.get("attachments"):
                    problems.append(f"{where}: markdown attachments")
                continue
            if cell.outputs:
                problems.append(f"{where}: has outputs")
            if cell.execution_count is not None:
                problems.append(f"{where}: has an execution count")
            if "execution" in cell.metadata:
                problems.append(f"{where}: has execution timing metadata")
            expected = cell.metadata.get(META, {}).get("expected_outputs")
            if is_checked(cell):
                checked += 1
                if expected is None:
                    problems.append(f"{where}: checked cell without recorded expected output")
                elif any(o.get("output_type") != "stream" for o in expected):
                    problems.append(f"{where}: expected outputs must be printed text only")
            elif expected is not None:
                problems.append(f"{where}: expected outputs recorded on a cell that is not checked")
            if PASSWORD_SHAPE.search(json.dumps(cell.metadata)):
                problems.append(f"{where}: a password-shaped string in the cell metadata")
        if not checked:
            problems.append(f"{path.name}: no cell says {CHECK_MARK}")
    return problems


def test_notebooks_are_committed_without_outputs_or_widget_state():
    found = committed_notebooks()
    assert found and all(re.match(r"\d\d-[a-z0-9-]+\.ipynb$", p.name) for p in found), found
    problems = notebook_problems(found)
    assert not problems, "\n".join(problems)


def test_the_committed_check_is_not_vacuous(tmp_path):
    """A notebook saved with outputs and widget state fails the check, with the reasons; stripping
    it fixes everything but what only a person can fix."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "print(1)", execution_count=1, outputs=[nbformat.v4.new_output("stream", text="1\n")]
        )
    ]
    nb.metadata["widgets"] = {WIDGET_STATE_MIME: {"state": {}, "version_major": 2, "version_minor": 0}}
    nb.metadata["language_info"] = {"name": "python"}  # JupyterLab would mark it modified on opening
    nbformat.write(nb, tmp_path / "99-bad.ipynb")
    problems = "\n".join(notebook_problems([tmp_path / "99-bad.ipynb"]))
    assert "language_info is not ipykernel's in full" in problems, problems
    nb.metadata["language_info"] = {**KERNEL_LANGUAGE, "version": "3.11.7"}
    nbformat.write(nb, tmp_path / "99-bad.ipynb")
    problems = "\n".join(notebook_problems([tmp_path / "99-bad.ipynb"]))
    for words in ("widget state", "has outputs", "execution count", "no cell says"):
        assert words in problems, problems
    strip_notebook(tmp_path / "99-bad.ipynb")
    assert notebook_problems([tmp_path / "99-bad.ipynb"]) == [
        "99-bad.ipynb: no cell says # NBVAL_CHECK_OUTPUT"
    ]


@pytest.mark.slow
def test_nbval_compares_checked_cells_against_the_recorded_output(tmp_path):
    """The reference-copy mechanism really compares: a wrong expectation fails, a right one passes,
    sanitized values (DIDs) compare equal, and unchecked cells are not compared."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    right = f"{CHECK_MARK}\nprint('did:plc:' + 'abcdefghijklmnopqrstuvwx'[::-1], 6 * 7)"
    wrong = f"{CHECK_MARK}\nprint('the answer', 6 * 7)"
    nb.cells = [
        nbformat.v4.new_code_cell("print('not compared')"),
        nbformat.v4.new_code_cell(right),
        nbformat.v4.new_code_cell(wrong),
    ]
    nb.cells[1].metadata[META] = {
        "expected_outputs": [{"output_type": "stream", "name": "stdout", "text": "did:plc:<did> 42\n"}]
    }
    nb.cells[2].metadata[META] = {
        "expected_outputs": [{"output_type": "stream", "name": "stdout", "text": "the answer 43\n"}]
    }
    nbformat.write(nb, tmp_path / "self-test.ipynb")
    workdir = tmp_path / "nbval"
    workdir.mkdir()
    ref = reference_copy(tmp_path / "self-test.ipynb", workdir)
    run = run_nbval([ref], workdir, kernel_env(tmp_path / "k"))
    assert run.proc.returncode == 1, run.report
    assert "1 failed, 2 passed" in run.report, run.report
    assert "Cell 2" in run.report and "the answer 43" in run.report, run.report
    assert "did:plc:xwvutsrqponmlkjihgfedcba 42" in run.cell_text("self-test.ipynb", "abcdefgh")


# ------------------------------------------------------------------------------------------------
# the notebooks, run
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_01_quickstart(tmp_path):
    run = run_notebook("01-quickstart.ipynb", tmp_path)
    assert "1000 samples" in run.cell_text("01-quickstart.ipynb", "write_samples(samples")


@pytest.fixture
def services_env(redis_server, s3_server) -> dict[str, str]:
    """Real Redis and S3 (SeaweedFS) for notebook 02, as the env variables it reads."""
    return {
        "ATDATA_REDIS_URL": redis_server.url,
        "ATDATA_S3_ENDPOINT": s3_server.endpoint_url,
        "ATDATA_S3_KEY": s3_server.key,
        "ATDATA_S3_SECRET": s3_server.secret,
        "ATDATA_S3_BUCKET": s3_server.make_bucket(),
        # SeaweedFS wants the checksum behaviour of older S3 clients (as the S3 fixtures set it)
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.s3
def test_02_local_index_with_redis_and_s3(tmp_path, services_env, s3_server):
    run = run_notebook("02-local-index.ipynb", tmp_path, services_env)
    text = run.text()
    assert "skipped" not in text, run.cell_text("02-local-index.ipynb", "REDIS_WHY = redis_unreachable()")
    assert s3_server.secret not in text
    bucket = services_env["ATDATA_S3_BUCKET"]
    keys = s3_server.fs().find(bucket)
    assert any(k.endswith("experiment-s3-000002.tar") for k in keys), keys


@pytest.mark.slow
def test_02_says_clearly_when_redis_and_s3_are_skipped(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on: "set but unreachable"
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    env = {"ATDATA_REDIS_URL": f"redis://127.0.0.1:{dead}/0"}
    for k in [k for k in os.environ if k.startswith("ATDATA_S3_")]:
        monkeypatch.delenv(k)
    run = run_notebook("02-local-index.ipynb", tmp_path, env, compare=False)
    nb = "02-local-index.ipynb"
    status = run.cell_text(nb, "REDIS_WHY = redis_unreachable()")
    assert "Redis: skipped: the Redis server at ATDATA_REDIS_URL did not answer (ConnectionError)" in status
    assert "S3:    skipped: ATDATA_S3_BUCKET is not set" in status
    assert run.cell_text(nb, "team = atdata.Index(url=").startswith("skipped: the Redis variant (")
    assert run.cell_text(nb, "cloud = atdata.Index(").startswith(
        "skipped: the S3 variant (ATDATA_S3_BUCKET is not set)"
    )
    assert run.cell_text(nb, "shared = atdata.Index(").startswith("skipped: Redis + S3 (")


@pytest.fixture
def sandbox_installed(request):
    """The sandbox's Node deps installed (a cold install shows its progress), so the notebook's own
    ``Sandbox()`` starts in seconds."""
    from atdata_lab.sandbox import ensure_installed

    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        ensure_installed(progress=True)


@pytest.mark.slow
@pytest.mark.sandbox
def test_03_promotion(tmp_path, sandbox_installed):
    run = run_notebook("03-promotion.ipynb", tmp_path)
    nb = "03-promotion.ipynb"
    dedup = run.cell_text(nb, "schemas_before = ")
    assert "schema decision: reuse" in dedup and "schema records: 1 -> 1" in dedup, dedup
    assert "sandbox stopped: True" in run.cell_text(nb, "sandbox.stop()")


@pytest.mark.slow
@pytest.mark.sandbox
def test_04_widgets_tour(tmp_path, sandbox_installed):
    """The tour runs top to bottom with the wizard driven by its programmatic twins; the sandbox it
    started stops with its kernel."""
    import requests

    run = run_notebook("04-widgets-tour.ipynb", tmp_path, {"ATDATA_TOUR_AUTOPILOT": "1"})
    nb = "04-widgets-tour.ipynb"
    assert "compatible -> 1.1.0" in run.cell_text(nb, "schema_diff.verdict")
    wizard = run.cell_text(nb, "ATDATA_TOUR_AUTOPILOT")
    assert "verified | all checks passed: True" in wizard and "Published tab: True" in wizard, wizard
    pds = re.search(r"on (http://127\.0\.0\.1:\d+)", run.cell_text(nb, "Sandbox().start()")).group(1)
    deadline = time.monotonic() + 20
    while True:  # the kernel is gone, so is its sandbox
        try:
            requests.get(pds + "/xrpc/_health", timeout=2)
        except requests.ConnectionError:
            break
        assert time.monotonic() < deadline, (
            f"the notebook's sandbox at {pds} still answers after the kernel exited"
        )
        time.sleep(0.5)


@pytest.mark.slow
def test_05_lenses(tmp_path):
    run = run_notebook("05-lenses.ipynb", tmp_path)
    nb = "05-lenses.ipynb"
    assert "random access: Calibrated True" in run.cell_text(
        nb, "ds = index.dataset(entry).as_type(Calibrated)"
    )
    assert "laws broken: ['GetPut']" in run.cell_text(nb, "def lossy(")


def test_every_notebook_has_its_test():
    names = {f"test_{p.stem.replace('-', '_')}" for p in committed_notebooks()}
    mine = set(globals())
    assert all(any(t.startswith(n) for t in mine) for n in names), sorted(names - mine)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Notebook helpers for tests/test_notebooks.py")
    ap.add_argument(
        "--strip",
        nargs="+",
        type=Path,
        metavar="NOTEBOOK",
        required=True,
        help="remove outputs, execution counts and timing, and widget state (in place)",
    )
    args = ap.parse_args()
    for nb_path in args.strip:
        strip_notebook(nb_path)
    problems = notebook_problems(args.strip)
    print("\n".join(problems) or f"stripped {len(args.strip)} notebook(s): OK")
    sys.exit(1 if problems else 0)
