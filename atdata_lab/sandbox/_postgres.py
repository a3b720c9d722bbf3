"""A private PostgreSQL cluster on 127.0.0.1: Debian's ``initdb`` + ``postgres``, started and stopped.

One launcher for the whole project: the sandbox's AppView database and the tests' ``postgres_server``
fixture (tests/plugins/services.py subclasses :class:`PostgresCluster`) both start their cluster here.

``initdb`` makes a fresh cluster whose superuser ``atdata`` has a random password, required over TCP
(scram-sha-256); the unix socket lives beside the data (mode 0700), not in /var/run; the server
listens on 127.0.0.1 only. PostgreSQL refuses to run as root: under root the cluster belongs to, and
runs as, Debian's ``postgres`` system user, with its data in a fresh 0700 folder under the system temp
dir that this user can reach (named ``atdata-lab-pg-*``, with an ``owner.pid``; folders whose owner and
postmaster are both gone are swept). Stopped with SIGINT (PostgreSQL's fast shutdown), SIGKILL after a
grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from atdata_lab.errors import SandboxError
from atdata_lab.sandbox import _procs

__all__ = ["PG_TMP_PREFIX", "PostgresCluster", "find_postgres_bindir", "sweep_stale_postgres_dirs"]

PG_TMP_PREFIX = "atdata-lab-pg-"
_HOST = "127.0.0.1"
_INSTALL_HINT = "apt-get install postgresql (or bash scripts/install-system-deps.sh)"


def find_postgres_bindir() -> Path | None:
    """The folder of ``initdb`` and ``postgres``: Debian's newest ``/usr/lib/postgresql/<v>/bin``
    (not on PATH there), else the folder of an ``initdb`` on PATH; None when neither exists."""

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in p.parent.parent.name.split(".") if x.isdigit())

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version)
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


def _run_as() -> tuple[int, int] | None:
    """``(uid, gid)`` to run PostgreSQL as: None (ourselves) unless we are root, which initdb and
    postgres refuse; then Debian's ``postgres`` system user (created by the postgresql package)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise SandboxError(
            "PostgreSQL refuses to run as root and there is no `postgres` user to run it as: "
            f"{_INSTALL_HINT} creates it"
        ) from None
    return pw.pw_uid, pw.pw_gid


def sweep_stale_postgres_dirs() -> None:
    """Remove ``<tmp>/atdata-lab-pg-*`` folders whose owner process and postmaster are both gone
    (left by killed sessions): only ours, by name, never a running cluster."""
    for d in Path(tempfile.gettempdir()).glob(PG_TMP_PREFIX + "*"):
        try:
            owner = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if _procs.is_alive(owner):
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((d / "data" / "postmaster.pid").read_text().split()[0])
            if _procs.is_alive(postmaster):
                continue
        shutil.rmtree(d, ignore_errors=True)


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``preexec_fn``: the child gets SIGKILL when the process that started it dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


class PostgresCluster:
    """One fresh PostgreSQL cluster on 127.0.0.1 (``initdb`` at construction, :meth:`start` to run).

    Args:
        workdir: Its log (``postgres.log``) goes there, and its data too unless running as root.
        port: The TCP port; a free one when None. It stays the same across restarts.
        bindir: The folder of ``initdb``/``postgres`` (default :func:`find_postgres_bindir`).
        die_with_parent: Kill the server when the process that started it dies (PR_SET_PDEATHSIG);
            False for a server that outlives its starter (the detached CLI sandbox).
        max_connections: PostgreSQL's ``max_connections``.

    Raises:
        SandboxError: PostgreSQL is not installed or ``initdb`` failed (the message names the fix).
    """

    host = _HOST
    user = "atdata"

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        port: int | None = None,
        bindir: str | os.PathLike[str] | None = None,
        die_with_parent: bool = True,
        max_connections: int = 60,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or _procs.free_port(_HOST)
        found = Path(bindir) if bindir is not None else find_postgres_bindir()
        if found is None or not (found / "postgres").exists():
            raise SandboxError(f"PostgreSQL is not installed (no initdb/postgres found): {_INSTALL_HINT}")
        self.bindir = found
        self.password = secrets.token_urlsafe(18)
        self.max_connections = max_connections
        self._die_with_parent = die_with_parent
        self.run_as = _run_as()
        if self.run_as is None:
            self.base = self.workdir
        else:
            sweep_stale_postgres_dirs()
            self.base = Path(tempfile.mkdtemp(prefix=PG_TMP_PREFIX))
            (self.base / "owner.pid").write_text(str(os.getpid()))
            os.chown(self.base, *self.run_as)
        self.data_dir = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log_path = self.workdir / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._initdb()

    # -- addresses -------------------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        """``postgresql://atdata:PASSWORD@127.0.0.1:PORT/dbname`` (TCP, password required)."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    @property
    def pid(self) -> int | None:
        """PID of the running postmaster (None when stopped)."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    # -- process ---------------------------------------------------------------------------------

    def _popen_kwargs(self) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C.UTF-8"}
        kw: dict[str, Any] = {
            "stdin": subprocess.DEVNULL,
            "cwd": self.base,
            "start_new_session": True,  # its own process group: stop() signals exactly this group
            "env": env,
        }
        if self._die_with_parent:
            kw["preexec_fn"] = die_with_parent  # runs after the uid change, which would clear it
        if self.run_as is not None:
            kw.update(user=self.run_as[0], group=self.run_as[1], extra_groups=[])
        return kw

    def _initdb(self) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if self.run_as is not None:
            for p in (pwfile, self.socket_dir):
                os.chown(p, *self.run_as)
        try:
            cmd = [
                str(self.bindir / "initdb"),
                "-D", str(self.data_dir),
                "-U", self.user,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E", "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ]  # fmt: skip
            with open(self.log_path, "ab") as log:
                proc = subprocess.run(
                    cmd, stdout=log, stderr=subprocess.STDOUT, timeout=120, **self._popen_kwargs()
                )
            if proc.returncode != 0:
                raise SandboxError(
                    f"initdb failed with {proc.returncode}; end of {self.log_path}:\n{_tail(self.log_path)}"
                )
        finally:
            pwfile.unlink(missing_ok=True)

    def command(self) -> list[str]:
        """The exact command line that starts the server."""
        return [
            str(self.bindir / "postgres"),
            "-D", str(self.data_dir),
            "-h", self.host,
            "-p", str(self.port),
            "-k", str(self.socket_dir),
            "-c", "unix_socket_permissions=0700",
            "-c", f"max_connections={self.max_connections}",
            "-c", "shared_buffers=64MB",
            "-c", "timezone=UTC",
            "-c", "logging_collector=off",
        ]  # fmt: skip

    def is_ready(self) -> bool:
        """True when the server accepts TCP connections (``pg_isready``)."""
        probe = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "2"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return probe.returncode == 0

    def start(self, timeout: float = 30) -> PostgresCluster:
        """Start the postmaster and wait until it accepts connections on 127.0.0.1.

        Raises:
            SandboxError: It exited or was not ready in time (the message carries the log's end).
        """
        if self.pid is not None:
            return self
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, **self._popen_kwargs()
            )
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SandboxError(
                    f"postgres exited with {self.proc.returncode} on port {self.port}; end of "
                    f"{self.log_path}:\n{_tail(self.log_path)}"
                )
            if self.is_ready():
                self.startup_seconds = time.monotonic() - t0
                return self
            time.sleep(0.05)
        self.stop()
        raise SandboxError(
            f"postgres was not ready within {timeout} s; end of {self.log_path}:\n{_tail(self.log_path)}"
        )

    def stop(self, grace: float = 10.0) -> None:
        """SIGINT (fast shutdown: open sessions are ended), SIGKILL after ``grace`` seconds."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the server at once (a crash: only what is already on disk survives)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        """Stop the server and remove its data when it lived outside ``workdir`` (root's temp folder)."""
        self.stop()
        if self.base != self.workdir:
            shutil.rmtree(self.base, ignore_errors=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, port={self.port}, pid={self.pid})"
