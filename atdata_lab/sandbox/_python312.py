"""Find a CPython 3.12 interpreter on this machine (for the venvs that need Python >= 3.12).

The project supports Python 3.11, while atdata-app (the AppView) and atdata 0.7 need 3.12: they run
in venvs of their own, built from the interpreter found here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["PYTHON312_HINT", "clean_env", "find_python312", "python_minor"]

PYTHON312_HINT = (
    "install Python 3.12 (e.g. `pyenv install 3.12`, or apt-get install python3.12 python3.12-venv) "
    "or point ATDATA_LAB_PYTHON312 at a python3.12"
)
_ENV_DROP = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONNOUSERSITE")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the variables that would leak our venv into another
    interpreter (``PYTHONPATH``, ``VIRTUAL_ENV``, ...), with user site-packages off."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env["PYTHONNOUSERSITE"] = "1"
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    if extra:
        env.update(extra)
    return env


def python_minor(executable: str) -> tuple[int, int] | None:
    """``(major, minor)`` of an interpreter that has the ``venv`` module, found by running it; None
    when it does not run."""
    try:
        out = subprocess.run(
            [executable, "-c", "import sys, venv; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            env=clean_env(),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    try:
        major, minor = (int(x) for x in out.stdout.split())
    except ValueError:
        return None
    return major, minor


def _pyenv_root() -> Path:
    root = os.environ.get("PYENV_ROOT")
    if root:
        return Path(root)
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                return Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return Path.home() / ".pyenv"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", path.name))


def find_python312() -> str | None:
    """A working CPython 3.12 interpreter, or None.

    Looks, in order, at ``$ATDATA_LAB_PYTHON312``, pyenv's installed ``3.12.*`` versions (newest
    first; real binaries, not shims), and ``python3.12`` on PATH. Each candidate is run once to
    check that it really is 3.12 and has the ``venv`` module.
    """
    candidates: list[str] = []
    override = os.environ.get("ATDATA_LAB_PYTHON312")
    if override:
        candidates.append(override)
    versions = _pyenv_root() / "versions"
    if versions.is_dir():
        found = [p for p in versions.glob("3.12*") if re.fullmatch(r"3\.12\.\d+", p.name)]
        for v in sorted(found, key=_version_key, reverse=True):
            candidates.append(str(v / "bin" / "python3.12"))
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(on_path)
    seen: set[str] = set()
    for cand in candidates:
        if cand in seen or not Path(cand).exists():
            continue
        seen.add(cand)
        if python_minor(cand) == (3, 12):
            return cand
    return None
