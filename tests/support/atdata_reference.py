"""The real atdata 0.7.0b1 as a reference implementation, run in its own Python 3.12 venv.

atdata 0.7 needs Python >= 3.12 while the project supports 3.11, so atdata never enters the
project's own environment. Instead a dedicated venv is built once per machine (cached under
``${ATDATA_LAB_CACHE:-~/.cache/atdata-lab}/atdata-0.7.0b1-py312/``) and scripts run inside it as
subprocesses that talk JSON on stdout.

Typical use in a test::

    from tests.support import atdata_reference as ref

    python = ref.require_atdata_venv()          # pytest.skip(reason) when no Python 3.12 exists
    samples = ref.read_shards_with_atdata(spec, [shard])

The build is atomic (built in a temporary sibling directory, checked by importing atdata, then
renamed into place) and serialised by an ``fcntl`` file lock, so parallel test processes (or
parallel sessions on the same machine) build it at most once and never see a half-built venv.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from atdata_lab.sandbox._python312 import clean_env, find_python312, python_minor

ATDATA_VERSION = "0.7.0b1"
"""The atdata release the fixtures were written with and that our shards must load in."""

VENV_REQUIREMENTS: tuple[str, ...] = (f"atdata=={ATDATA_VERSION}",)
"""What goes into the reference venv; atdata pulls in numpy, webdataset, msgpack itself."""

VENV_NAME = f"atdata-{ATDATA_VERSION}-py312"
READY_MARKER = "atdata-lab-ready.json"
SUPPORT_DIR = Path(__file__).resolve().parent
READ_SCRIPT = SUPPORT_DIR / "atdata_read_shards.py"
WRITE_SCRIPT = SUPPORT_DIR / "atdata_write_shards.py"
PUBLISH_SCRIPT = SUPPORT_DIR / "atdata_publish_dataset.py"

_BUILD_TIMEOUT_S = 900


class AtdataUnavailable(RuntimeError):
    """The reference venv cannot exist on this machine (no Python 3.12); ``.reason`` says why.

    Tests turn this into ``pytest.skip(reason)``. Set ``ATDATA_LAB_REQUIRE_ATDATA=1`` to make
    :func:`require_atdata_venv` fail instead of skipping (e.g. in CI, where 3.12 must be present).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AtdataBuildError(RuntimeError):
    """Building the reference venv failed although Python 3.12 exists (pip error, bad wheel...)."""


class AtdataRunError(RuntimeError):
    """A script run inside the reference venv exited non-zero or timed out.

    Attributes:
        returncode: The exit code (``None`` on timeout).
        stdout: What the script printed on stdout.
        stderr: What the script printed on stderr.
    """

    def __init__(self, message: str, returncode: int | None, stdout: str, stderr: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


# --------------------------------------------------------------------------------------------
# Finding Python 3.12
# --------------------------------------------------------------------------------------------


# One finder for the project: the sandbox's AppView venv is built from the same interpreter.
_python_minor = python_minor


# --------------------------------------------------------------------------------------------
# Building the venv (once, atomically, under a file lock)
# --------------------------------------------------------------------------------------------


def cache_root() -> Path:
    """The project's machine-wide cache dir: ``$ATDATA_LAB_CACHE`` or ``~/.cache/atdata-lab``."""
    env = os.environ.get("ATDATA_LAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "atdata-lab"


def venv_dir() -> Path:
    """Where the reference venv lives (whether or not it has been built yet)."""
    return cache_root() / VENV_NAME


def venv_python(root: Path | None = None) -> Path:
    """The interpreter of a venv rooted at ``root`` (default: :func:`venv_dir`)."""
    return (root or venv_dir()) / "bin" / "python"


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return clean_env(extra)


def _is_ready(root: Path) -> bool:
    """A venv is ready when its marker exists, names the current requirements, and python runs."""
    marker = root / READY_MARKER
    if not (marker.is_file() and venv_python(root).exists()):
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return info.get("requirements") == list(VENV_REQUIREMENTS)


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _run_checked(cmd: Sequence[str], what: str, timeout: float) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=_clean_env())
    except subprocess.TimeoutExpired as exc:
        raise AtdataBuildError(f"{what}: timed out after {timeout:.0f} s") from exc
    if out.returncode != 0:
        tail = (out.stdout + out.stderr)[-4000:]
        raise AtdataBuildError(f"{what} failed (exit {out.returncode}):\n{tail}")
    return out.stdout


def _build(python312: str, final: Path) -> None:
    """Builds the venv in a temporary sibling of ``final``, checks it, and renames it into place.

    A venv keeps working after a rename as long as it is used through ``bin/python`` (``sys.prefix``
    comes from ``pyvenv.cfg`` next to it); only console-script shebangs keep the temporary path,
    so everything here runs ``python -m pip`` rather than ``bin/pip``.
    """
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f".{VENV_NAME}.build-", dir=final.parent))
    try:
        _run_checked([python312, "-m", "venv", str(tmp)], "python3.12 -m venv", 300)
        py = str(venv_python(tmp))
        _run_checked(
            [py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], "pip upgrade", _BUILD_TIMEOUT_S
        )
        _run_checked(
            [py, "-m", "pip", "install", "--quiet", *VENV_REQUIREMENTS],
            f"pip install {' '.join(VENV_REQUIREMENTS)}",
            _BUILD_TIMEOUT_S,
        )
        probe = _run_checked(
            [
                py,
                "-c",
                "import json, atdata, importlib.metadata as m; "
                "print(json.dumps({d: m.version(d) for d in ('atdata', 'numpy', 'webdataset', 'msgpack')}))",
            ],
            "import atdata",
            120,
        )
        versions = json.loads(probe.strip().splitlines()[-1])
        if versions.get("atdata") != ATDATA_VERSION:
            raise AtdataBuildError(f"expected atdata {ATDATA_VERSION}, got {versions.get('atdata')}")
        marker = {
            "atdata_version": ATDATA_VERSION,
            "requirements": list(VENV_REQUIREMENTS),
            "python": python312,
            "packages": versions,
            "build_seconds": round(time.monotonic() - started, 2),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / READY_MARKER).write_text(json.dumps(marker, indent=1))
        if final.exists():  # a broken or outdated leftover: replace it
            stale = final.with_name(f".{VENV_NAME}.stale-{os.getpid()}")
            os.rename(final, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atdata_venv_status() -> tuple[Path | None, str]:
    """Builds the reference venv if needed and says whether it can be used.

    Returns:
        ``(python, "")`` with the venv's interpreter when it is ready, or ``(None, reason)`` when
        this machine has no Python 3.12.

    Raises:
        AtdataBuildError: Python 3.12 exists but building the venv failed (a real error that
            should fail the test, not skip it).
    """
    final = venv_dir()
    if _is_ready(final):
        return venv_python(final), ""
    python312 = find_python312()
    if python312 is None:
        return None, (
            f"atdata {ATDATA_VERSION} needs Python >= 3.12 and none was found "
            "(looked at $ATDATA_LAB_PYTHON312, pyenv versions 3.12.*, python3.12 on PATH)"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(final.parent / f"{VENV_NAME}.lock"):
        if not _is_ready(final):  # another process may have built it while we waited
            _build(python312, final)
    return venv_python(final), ""


def ensure_atdata_venv() -> Path | None:
    """Creates (once) the cached venv with ``atdata==0.7.0b1`` and returns its Python.

    Returns:
        The venv's ``bin/python``, or None when no Python 3.12 exists (use
        :func:`atdata_venv_status` or :func:`require_atdata_venv` to get the reason).

    Raises:
        AtdataBuildError: Python 3.12 exists but the build failed.
    """
    return atdata_venv_status()[0]


def require_atdata_venv() -> Path:
    """Like :func:`ensure_atdata_venv` but calls ``pytest.skip(reason)`` when it is unavailable.

    With ``ATDATA_LAB_REQUIRE_ATDATA=1`` in the environment it fails the test instead.

    Returns:
        The venv's ``bin/python``.
    """
    import pytest

    python, reason = atdata_venv_status()
    if python is None:
        if os.environ.get("ATDATA_LAB_REQUIRE_ATDATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return python


def venv_info() -> dict[str, Any]:
    """The ready marker of the built venv (versions, build time), or ``{}`` if not built."""
    marker = venv_dir() / READY_MARKER
    return json.loads(marker.read_text()) if marker.is_file() else {}


# --------------------------------------------------------------------------------------------
# Running code inside the venv
# --------------------------------------------------------------------------------------------


def run_atdata(
    script: str | Path,
    *args: str | os.PathLike[str],
    timeout: float = 600,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> str:
    """Runs Python code inside the reference venv and returns its stdout.

    Args:
        script: Either a :class:`~pathlib.Path` to a ``.py`` file, or a string of Python source
            (a snippet, run with ``python -c``). A string naming an existing ``.py`` file is
            also run as a file.
        *args: Command-line arguments passed to the script (``sys.argv[1:]``).
        timeout: Seconds before the process is killed and :class:`AtdataRunError` raised.
        stdin: Text fed to the script's standard input.
        env: Extra environment variables for the script.
        cwd: Working directory (default: a fresh temporary directory, so atdata writes nothing
            into the repo).

    Returns:
        The script's stdout (by convention a JSON document).

    Raises:
        AtdataUnavailable: No Python 3.12 on this machine.
        AtdataBuildError: The venv could not be built.
        AtdataRunError: The script failed or timed out.
    """
    python, reason = atdata_venv_status()
    if python is None:
        raise AtdataUnavailable(reason)
    is_file = isinstance(script, Path) or (
        "\n" not in script and script.endswith(".py") and Path(script).is_file()
    )
    cmd = [str(python), str(script)] if is_file else [str(python), "-c", str(script)]
    cmd += [os.fspath(a) for a in args]
    with tempfile.TemporaryDirectory(prefix="atdata-ref-") as scratch:
        # atdata keeps its index/config under the home directory: give it a throwaway one.
        run_env = _clean_env({"HOME": scratch, "ATDATA_HOME": scratch, **(env or {})})
        try:
            out = subprocess.run(
                cmd,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=run_env,
                cwd=os.fspath(cwd) if cwd else scratch,
            )
        except subprocess.TimeoutExpired as exc:
            raise AtdataRunError(
                f"atdata script timed out after {timeout} s: {cmd[1:3]}",
                None,
                _text(exc.stdout),
                _text(exc.stderr),
            ) from exc
    if out.returncode != 0:
        raise AtdataRunError(
            f"atdata script failed (exit {out.returncode}): {cmd[1:3]}\n{out.stderr[-4000:]}",
            out.returncode,
            out.stdout,
            out.stderr,
        )
    return out.stdout


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def run_atdata_json(script: str | Path, *args: str | os.PathLike[str], **kwargs: Any) -> Any:
    """:func:`run_atdata`, then parses the last non-empty line of stdout as JSON."""
    out = run_atdata(script, *args, **kwargs)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if not lines:
        raise AtdataRunError("atdata script printed nothing", 0, out, "")
    return json.loads(lines[-1])


# --------------------------------------------------------------------------------------------
# High-level helpers around the two scripts
# --------------------------------------------------------------------------------------------


def read_shards_with_atdata(
    spec: dict[str, Any],
    shards: Sequence[str | os.PathLike[str]],
    *,
    limit: int | None = None,
    timeout: float = 600,
) -> list[dict[str, Any]]:
    """Reads shards with the real atdata and returns the decoded samples.

    Args:
        spec: The sample type, e.g. ``{"name": "ExperimentSample", "fields": [{"name":
            "measurement", "kind": "ndarray"}, {"name": "timestamp", "kind": "float"}, ...]}``.
            Kinds: ``str int float bool bytes ndarray list[str] list[float] optional[ndarray]
            optional[str]`` (see ``atdata_read_shards.py``).
        shards: Shard paths (or brace-expandable WebDataset URLs), read in order.
        limit: Stop after this many samples.
        timeout: Seconds for the whole run.

    Returns:
        One dict per sample in file order, in the ``expected.json`` convention: arrays as
        ``{"dtype", "shape", "data"}``, bytes as ``{"bytes_hex"}``, None as None.
    """
    args = ["--spec", json.dumps(spec)]
    if limit is not None:
        args += ["--limit", str(limit)]
    args += [os.fspath(s) for s in shards]
    result = run_atdata_json(READ_SCRIPT, *args, timeout=timeout)
    return result["samples"]


def write_shards_with_atdata(
    out_dir: str | os.PathLike[str],
    n: int,
    *,
    maxcount: int = 10_000,
    seed: int = 0,
    prefix: str = "experiment",
    timeout: float = 900,
) -> dict[str, Any]:
    """Writes ``n`` tutorial ``ExperimentSample`` samples with atdata's own writer.

    Returns:
        ``{"shards": [...paths], "samples": n, "seconds": s, "samples_per_s": r}``.
    """
    return run_atdata_json(
        WRITE_SCRIPT,
        "write",
        os.fspath(out_dir),
        "--n",
        str(n),
        "--maxcount",
        str(maxcount),
        "--seed",
        str(seed),
        "--prefix",
        prefix,
        timeout=timeout,
    )


def publish_dataset_with_atdata(
    pds_url: str, handle: str, password: str, name: str, word: str, *, timeout: float = 300
) -> dict[str, Any]:
    """Publishes 12 ``TheirRow`` samples as ``name`` (tagged ``word``) with atdata 0.7's own
    publishers, as ``handle`` on the PDS at ``pds_url`` (``atdata_publish_dataset.py``).

    Returns:
        ``{"uri", "schema_uri", "label_uri", "did"}``.
    """
    require_atdata_venv()
    return run_atdata_json(  # the password goes on stdin, never on a command line
        PUBLISH_SCRIPT, pds_url, name, word, stdin=f"{handle}\n{password}\n", timeout=timeout
    )


def bench_atdata(
    shards: Sequence[str | os.PathLike[str]] | None = None,
    *,
    n: int = 5000,
    batch_size: int = 32,
    maxcount: int = 10_000,
    repeat: int = 3,
    timeout: float = 1800,
) -> dict[str, Any]:
    """Times atdata's write of ``n`` samples and its batched read (``batch_size``).

    Args:
        shards: Existing ``ExperimentSample`` shards to time reading; when None the freshly
            written ones are read.
        n: Samples to write (0 skips the write timing; then ``shards`` is required).
        batch_size: Batch size for ``ordered(batch_size=...)``.
        maxcount: Samples per shard when writing.
        repeat: Read passes; the best is reported.
        timeout: Seconds for the whole run.

    Returns:
        JSON from ``atdata_write_shards.py bench`` (``write`` and ``read`` sections with
        ``samples_per_s``).
    """
    args = [
        "bench",
        "--n",
        str(n),
        "--batch-size",
        str(batch_size),
        "--maxcount",
        str(maxcount),
        "--repeat",
        str(repeat),
    ]
    args += [os.fspath(s) for s in (shards or [])]
    return run_atdata_json(WRITE_SCRIPT, *args, timeout=timeout)


if __name__ == "__main__":  # pragma: no cover - manual use: build the venv and print its info
    t0 = time.monotonic()
    py, why = atdata_venv_status()
    print(
        json.dumps(
            {
                "python": str(py) if py else None,
                "reason": why,
                "seconds": round(time.monotonic() - t0, 2),
                "info": venv_info(),
            },
            indent=1,
        )
    )
    sys.exit(0 if py else 1)
