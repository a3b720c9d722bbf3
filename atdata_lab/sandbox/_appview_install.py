"""Install the AppView (``atdata-app==0.4.0b1``) into its own cached Python 3.12 venv.

atdata-app needs Python >= 3.12, the project supports 3.11: the AppView never enters the project's
environment. It is installed once per machine, with pip from the package index, every package pinned
by ``atdata_lab/sandbox_py/requirements.txt``, into::

    ${ATDATA_LAB_CACHE:-~/.cache/atdata-lab}/sandbox/appview-<hash>-py312/

``<hash>`` covers the requirements file, so a new pin installs beside the old venv. Like the PDS's
Node deps (:mod:`atdata_lab.sandbox._install`): one installer at a time (file lock, the others wait
and reuse), built in a temporary folder and renamed into place when complete (a ready-marker names
what is inside), progress through :class:`~atdata_lab.progress.ProgressEvent`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from atdata_lab.errors import SandboxError
from atdata_lab.progress import ProgressEvent
from atdata_lab.sandbox._install import Reporter, _file_lock, _tail, cache_root, make_reporter
from atdata_lab.sandbox._python312 import PYTHON312_HINT, clean_env, find_python312

__all__ = [
    "APPVIEW_VERSION",
    "AppViewInstallation",
    "appview_python_or_reason",
    "appview_scripts_dir",
    "ensure_appview_installed",
]

APPVIEW_VERSION = "0.4.0b1"
_READY = "atdata-lab-ready.json"


def appview_scripts_dir() -> Path:
    """The folder with requirements.txt, the AppView launcher and the bridge (shipped in the wheel)."""
    return Path(__file__).resolve().parent.parent / "sandbox_py"


@dataclass(frozen=True)
class AppViewInstallation:
    """A complete AppView venv.

    Attributes:
        python: The venv's interpreter (runs the launcher and the bridge).
        venv_dir: The venv folder.
        installed_now: True if this call did the install (False: reused from the cache).
        seconds: Time the install took (0 when reused).
    """

    python: Path
    venv_dir: Path
    installed_now: bool = False
    seconds: float = 0.0


def _requirements() -> Path:
    return appview_scripts_dir() / "requirements.txt"


def _pins() -> list[str]:
    lines = _requirements().read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _venv_dir() -> Path:
    key = hashlib.sha256(_requirements().read_bytes()).hexdigest()[:12]
    return cache_root() / f"appview-{APPVIEW_VERSION}-{key}-py312"


def _is_ready(root: Path) -> bool:
    try:
        info = json.loads((root / _READY).read_text())
    except (OSError, ValueError):
        return False
    return info.get("requirements") == _pins() and (root / "bin" / "python").exists()


def appview_python_or_reason() -> tuple[Path | None, str]:
    """``(python, "")`` when the AppView venv is installed, else ``(None, why not / how to fix)``."""
    root = _venv_dir()
    if _is_ready(root):
        return root / "bin" / "python", ""
    if find_python312() is None:
        return None, f"the AppView (atdata-app) needs Python 3.12 and none was found: {PYTHON312_HINT}"
    return None, "the AppView is not installed yet: run `make sandbox-install` or start it once (installs it)"


def _pip(py: Path, args: list[str], log_path: Path, what: str, report: Reporter, total: int) -> None:
    """Run ``python -m pip ARGS``, reporting every few seconds how many packages it has collected."""
    started = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(py), "-m", "pip", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(),
        )
        last = 0.0
        while proc.poll() is None:
            time.sleep(0.5)
            elapsed = time.monotonic() - started
            if elapsed - last < 5:
                continue
            last = elapsed
            try:
                text = log_path.read_text(errors="replace")
            except OSError:
                text = ""
            done = min(text.count("\nCollecting ") + text.count("\nProcessing "), total)
            step = "installing" if "Installing collected packages" in text else "collecting"
            report(
                f"{what}: {done}/{total} packages {step} ({elapsed:.0f} s)",
                ProgressEvent(task="appview install", done=done, total=total, unit="packages", message=step),
            )
    if proc.returncode != 0:
        raise SandboxError(
            f"{what} failed (exit {proc.returncode}); needs the package index (pip) and Python 3.12. "
            f"End of {log_path}:\n{_tail(log_path)}"
        )


def _build(python312: str, final: Path, report: Reporter) -> float:
    started = time.monotonic()
    pins = _pins()
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-appview-", dir=final.parent))
    log_path = tmp.parent / f"{tmp.name}.log"
    try:
        report(f"creating the AppView's Python 3.12 venv in {final} (from {python312})", None)
        out = subprocess.run(
            [python312, "-m", "venv", str(tmp)], capture_output=True, text=True, env=clean_env(), check=False
        )
        if out.returncode != 0:
            raise SandboxError(f"python3.12 -m venv failed: {out.stderr.strip()[-2000:]}: {PYTHON312_HINT}")
        py = tmp / "bin" / "python"
        report(
            f"pip install atdata-app=={APPVIEW_VERSION} ({len(pins)} pinned packages; about 30 s)",
            ProgressEvent(task="appview install", done=0, total=len(pins), unit="packages"),
        )
        _pip(
            py,
            ["install", "--no-input", "--progress-bar", "off", "--no-deps", "-r", str(_requirements())],
            log_path,
            f"pip install atdata-app=={APPVIEW_VERSION}",
            report,
            len(pins),
        )
        probe = subprocess.run(
            [
                str(py),
                "-c",
                "import json, importlib.metadata as m, atdata_app, uvicorn, websockets, httpx;"
                "print(json.dumps(m.version('atdata-app')))",
            ],
            capture_output=True,
            text=True,
            env=clean_env(),
            check=False,
        )
        if probe.returncode != 0 or json.loads(probe.stdout.strip() or "null") != APPVIEW_VERSION:
            raise SandboxError(
                f"the AppView venv does not import atdata_app {APPVIEW_VERSION}: {probe.stderr[-2000:]}"
            )
        seconds = time.monotonic() - started
        marker = {
            "requirements": pins,
            "python": python312,
            "seconds": round(seconds, 1),
            "installed": time.time(),
        }
        (tmp / _READY).write_text(json.dumps(marker, indent=1))
        shutil.rmtree(final, ignore_errors=True)  # an incomplete leftover (we hold the lock)
        os.rename(tmp, final)
        log_path.unlink(missing_ok=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return seconds


@overload
def ensure_appview_installed(
    progress: Any = ..., *, required: Literal[True] = ...
) -> AppViewInstallation: ...
@overload
def ensure_appview_installed(progress: Any = ..., *, required: bool) -> AppViewInstallation | None: ...


def ensure_appview_installed(progress: Any = True, *, required: bool = True) -> AppViewInstallation | None:
    """Install ``atdata-app==0.4.0b1`` (all packages pinned) into its cached Python 3.12 venv if missing.

    Safe to call from several processes at once: one installs, the others wait and reuse it.

    Args:
        progress: ``True`` prints what is happening to stderr, ``False`` is silent, a callable
            receives :class:`~atdata_lab.progress.ProgressEvent` objects.
        required: ``False``: where there is no Python 3.12, report that (the rest of the sandbox
            works without the AppView) and return None instead of raising (``make sandbox-install``).

    Raises:
        SandboxError: No Python 3.12 on this machine (the message says how to get one; the rest of
            the sandbox works without it), or pip failed.
    """
    report = make_reporter(progress)
    final = _venv_dir()
    if _is_ready(final):
        return AppViewInstallation(python=final / "bin" / "python", venv_dir=final)
    python312 = find_python312()
    if python312 is None:
        message = (
            f"the AppView (atdata-app {APPVIEW_VERSION}) needs Python 3.12 and none was found: "
            f"{PYTHON312_HINT}. The sandbox PDS works without it (start it without appview)."
        )
        if not required:
            report(f"skipped: {message}", None)
            return None
        raise SandboxError(message)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(final.parent / ".appview-install.lock", report):
        for stale in final.parent.glob(".tmp-appview-*"):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
        if _is_ready(final):  # another process installed it while we waited
            return AppViewInstallation(python=final / "bin" / "python", venv_dir=final)
        seconds = _build(python312, final, report)
    report(f"AppView installed in {seconds:.0f} s", None)
    return AppViewInstallation(
        python=final / "bin" / "python", venv_dir=final, installed_now=True, seconds=seconds
    )
