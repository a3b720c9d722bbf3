"""The cached venvs the peer libraries of ``benchmarks/peers.py`` run in (built on first use).

The peers pin things our own environment must not be bound by, and two of them conflict with each
other, so they live in two venvs of their own under ``${ATDATA_LAB_CACHE:-~/.cache/atdata-lab}/``:

* ``peers-<hash>``: Hugging Face ``datasets`` (Arrow), ``pylance`` (Lance), ``webdataset`` with
  ``wids`` (its random-access reader, a package of its own, which imports ``torch.distributed``) and
  LitData (``litdata``, which needs torch and names ``torchvision`` unpinned: pinned here to the
  release that takes this torch, else pip would bring torch 2.14 and its CUDA libraries). LitData's
  requirements meet nothing else here; a venv of its own would repeat torch for ~100 MB of packages.
* ``mds-<hash>``: MosaicML ``mosaicml-streaming`` (MDS), which requires torch. Its release pins
  ``numpy<2.2`` and ``transformers<5`` (hence ``huggingface-hub<1``), which ``datasets`` 5 cannot
  share.

Both take the CPU build of torch (``torch==2.13.0``, the wheel ``make setup`` installs from this
machine's disk: PyPI's default build would pull several GB of CUDA libraries). webdataset imports
torch whenever it is installed, so its peak-RSS process blocks that import (as for a user without
torch; ``peers.py rss``).

Both are built with the project's own interpreter (the CPU torch wheel is for it). Pins are exact,
so that numbers compare across runs. A build is atomic (a temporary sibling, checked by importing
the libraries, renamed into place) and serialised by a file lock, like the atdata 0.7 reference
venv (``tests/support/atdata_reference.py``, whose helpers this reuses).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.atdata_reference import _file_lock, cache_root, clean_env  # noqa: E402

TORCH = "torch==2.13.0"
VENVS: dict[str, tuple[str, ...]] = {
    # pillow: wids and webdataset's decoders import PIL, which nothing here installs
    "peers": (
        TORCH,
        "datasets==5.2.0",
        "pylance==14.0.2",
        "webdataset==1.0.2",
        "wids==0.1.11",
        "pillow==13.0.0",
        "litdata==0.2.76",
        "torchvision==0.28.0",
    ),
    "mds": (TORCH, "mosaicml-streaming==0.13.0"),
}
"""Each venv's exact requirements (pip resolves the rest; the versions found are in its marker)."""

LIBRARIES: dict[str, str] = {"lance": "peers", "hf": "peers", "wds": "peers", "lit": "peers", "mds": "mds"}
"""Which venv each peer of ``peers.py`` runs in."""

_PROBES = {
    "peers": ("datasets", "pylance", "pyarrow", "webdataset", "wids", "litdata", "torch", "numpy"),
    "mds": ("mosaicml-streaming", "torch", "numpy"),
}
_IMPORTS = {
    "peers": "import datasets, lance, webdataset, wids, PIL, litdata",
    # peers.py's torchvision workaround (see MDS there), then streaming
    "mds": "import torch; [torch.library.define(f'torchvision::{o}', '(Tensor dets, Tensor scores, "
    "float iou_threshold) -> Tensor') for o in ('nms', 'qnms')]; import streaming",
}
READY = "atdata-lab-ready.json"


class PeerVenvError(RuntimeError):
    """Building a peer venv failed (pip's output tail is in the message)."""


def venv_dir(kind: str) -> Path:
    """Where the ``kind`` venv lives: its name carries a hash of its requirements and Python."""
    key = json.dumps([VENVS[kind], sys.version_info[:2]]).encode()
    return (
        cache_root()
        / f"{kind}-{hashlib.sha1(key).hexdigest()[:10]}-py{sys.version_info[0]}{sys.version_info[1]}"
    )


def _python(root: Path) -> Path:
    return root / "bin" / "python"


def _ready(root: Path) -> bool:
    try:
        info = json.loads((root / READY).read_text())
    except (OSError, ValueError):
        return False
    return info.get("requirements") == list(VENVS[root.name.split("-")[0]]) and _python(root).exists()


def _run(cmd: list[str], what: str, timeout: float = 1200) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=clean_env())
    except subprocess.TimeoutExpired as exc:
        raise PeerVenvError(f"{what}: timed out after {timeout:.0f} s") from exc
    if out.returncode != 0:
        tail = "\n".join(ln for ln in (out.stdout + out.stderr).splitlines() if "is ignored" not in ln)
        raise PeerVenvError(f"{what} failed (exit {out.returncode}):\n{tail[-3000:]}")
    return out.stdout


def _say(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


def _build(kind: str, final: Path) -> None:
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.build-", dir=final.parent))
    try:
        base = getattr(sys, "_base_executable", sys.executable)
        _say(f"building the {kind} venv in {final} (once; 1-4 minutes): {' '.join(VENVS[kind])}")
        _run([base, "-m", "venv", str(tmp)], f"{base} -m venv")
        _run([str(_python(tmp)), "-m", "pip", "install", "--quiet", *VENVS[kind]], f"pip install ({kind})")
        _say(f"{kind}: installed in {time.monotonic() - started:.0f} s; checking the imports")
        probe = (
            f"import json, importlib.metadata as m; {_IMPORTS[kind]}; "
            f"print(json.dumps({{d: m.version(d) for d in {_PROBES[kind]!r}}}))"
        )
        versions = json.loads(_run([str(_python(tmp)), "-c", probe], f"import ({kind})").splitlines()[-1])
        marker = {
            "requirements": list(VENVS[kind]),
            "packages": versions,
            "python": base,
            "build_seconds": round(time.monotonic() - started, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / READY).write_text(json.dumps(marker, indent=1))
        if final.exists():  # an unfinished or broken leftover
            shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        _say(f"{kind} venv ready ({marker['build_seconds']:.0f} s)")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_venv(kind: str) -> Path:
    """The ``kind`` venv's Python, building the venv first if it is missing (with progress on stderr).

    Raises:
        PeerVenvError: pip or the import check failed.
    """
    final = venv_dir(kind)
    if not _ready(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(final.parent / f"{final.name}.lock"):
            if not _ready(final):  # another process may have built it while we waited
                _build(kind, final)
    return _python(final)


def versions(kind: str) -> dict[str, str]:
    """The package versions recorded when the ``kind`` venv was built ({} if it is not built)."""
    try:
        return json.loads((venv_dir(kind) / READY).read_text())["packages"]
    except (OSError, ValueError, KeyError):
        return {}


if __name__ == "__main__":  # build both venvs and print their versions
    for k in VENVS:
        ensure_venv(k)
        print(k, venv_dir(k), json.dumps(versions(k)))
