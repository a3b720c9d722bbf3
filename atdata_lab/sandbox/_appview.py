"""The sandbox's AppView network: PostgreSQL, the relay bridge and the real AppView, on loopback.

:class:`AppViewNetwork` starts, beside a running sandbox PDS + PLC:

1. a private PostgreSQL cluster (:class:`~atdata_lab.sandbox._postgres.PostgresCluster`; throw-away:
   the AppView backfills from the PDS at every start, so nothing of it needs keeping);
2. the bridge (``atdata_lab/sandbox_py/bridge.py``): ``listReposByCollection`` and a Jetstream
   WebSocket made from the PDS's own endpoints;
3. the AppView, ``atdata-app==0.4.0b1`` unmodified, through ``atdata_lab/sandbox_py/appview.py``
   (which points its DID resolver at the sandbox PLC) in its own Python 3.12 venv
   (:func:`~atdata_lab.sandbox._appview_install.ensure_appview_installed`).

Each runs in its own process group, listens on 127.0.0.1 only, logs to ``<run_dir>/<name>.log``, and
is described by a :class:`ProcessInfo` so that another process (``atdata-lab sandbox stop``) can stop
it by pid and start time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from atdata_lab.errors import SandboxError
from atdata_lab.sandbox import _procs
from atdata_lab.sandbox._appview_install import AppViewInstallation, appview_scripts_dir
from atdata_lab.sandbox._postgres import PostgresCluster, die_with_parent

__all__ = ["AppViewNetwork", "ProcessInfo", "stop_processes"]

HOST = "127.0.0.1"
_APPVIEW_HEALTH = "/xrpc/science.alt.dataset.describeService"


@dataclass(frozen=True)
class ProcessInfo:
    """One started process: enough for any later process to find and stop exactly it.

    Attributes:
        name: ``"postgres"``, ``"bridge"`` or ``"appview"``.
        pid: Its pid (it leads its own process group).
        start_time: Its start time in clock ticks (``/proc/PID/stat``): a recycled pid differs.
        port: The 127.0.0.1 port it listens on.
        log: Its log file.
        stop_signal: The signal that stops it cleanly (SIGINT for PostgreSQL, else SIGTERM).
    """

    name: str
    pid: int
    start_time: int | None
    port: int
    log: str
    stop_signal: int = int(signal.SIGTERM)


def stop_processes(infos: list[dict[str, Any]], timeout: float = 10.0) -> list[str]:
    """Stop the processes described by ``ProcessInfo`` dicts, last started first; names those stopped."""
    stopped: list[str] = []
    for info in reversed(infos):
        sig = int(info.get("stop_signal", signal.SIGTERM))
        if _procs.stop_process_group(
            int(info["pid"]),
            expected_start=info.get("start_time"),
            timeout=timeout,
            sig=sig,
            leader_only=sig == signal.SIGINT,
        ):
            stopped.append(str(info["name"]))
    return stopped


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class AppViewNetwork:
    """PostgreSQL + bridge + AppView for one sandbox PDS (see the module docs).

    Args:
        install: The AppView venv (from ``ensure_appview_installed``).
        run_dir: Where the logs (and, unless running as root, the database) go.
        pds_url: The sandbox PDS (``http://127.0.0.1:PORT``).
        plc_url: The sandbox PLC directory.
        detach: The processes outlive this Python process (the CLI); otherwise they die with it.
        startup_timeout: Seconds to wait for each process to answer.
    """

    def __init__(
        self,
        install: AppViewInstallation,
        run_dir: Path,
        *,
        pds_url: str,
        plc_url: str,
        detach: bool = False,
        startup_timeout: float = 60.0,
    ) -> None:
        self.install = install
        self.run_dir = Path(run_dir)
        self.pds_url = pds_url
        self.plc_url = plc_url
        self.detach = detach
        self.startup_timeout = startup_timeout
        self.processes: list[ProcessInfo] = []
        self._popens: list[subprocess.Popen[bytes]] = []
        self.postgres: PostgresCluster | None = None
        self.bridge_port: int | None = None
        self.appview_port: int | None = None
        self.scratch_dirs: list[str] = []
        self.timings: dict[str, float] = {}

    @property
    def appview_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the AppView."""
        if self.appview_port is None:
            raise SandboxError("the AppView is not running: start the sandbox with appview=True")
        return f"http://{HOST}:{self.appview_port}"

    @property
    def bridge_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the bridge (relay host; Jetstream at ``ws://.../subscribe``)."""
        if self.bridge_port is None:
            raise SandboxError("the AppView bridge is not running: start the sandbox with appview=True")
        return f"http://{HOST}:{self.bridge_port}"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> AppViewNetwork:
        """Start PostgreSQL, the bridge and the AppView, each checked healthy and loopback-only.

        Raises:
            SandboxError: One of them did not start; the message names its log file. Whatever
                had started is stopped again.
        """
        try:
            self._start_postgres()
            self._start_bridge()
            self._start_appview()
        except BaseException:
            self.stop()
            raise
        if self.detach:  # they outlive us: forget the children (Popen must not warn about them)
            for proc in self._popens:
                proc.returncode = 0
            self._popens.clear()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every process (AppView, bridge, then PostgreSQL) and remove the database."""
        stop_processes([asdict(p) for p in self.processes], timeout=timeout)
        for proc in self._popens:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed above
                pass
        self._popens.clear()
        self.processes.clear()
        if self.postgres is not None:
            self.postgres.cleanup()  # the process is gone already: removes a root-owned temp data dir
            self.postgres = None
        for d in self.scratch_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.scratch_dirs.clear()
        self.bridge_port = self.appview_port = None

    def is_running(self) -> bool:
        """True while every process is alive."""
        return bool(self.processes) and all(
            _procs.is_alive(p.pid) and _procs.start_time(p.pid) == p.start_time for p in self.processes
        )

    def state(self) -> dict[str, Any]:
        """What a later process needs to find and stop the network (no secrets)."""
        return {
            "appview_url": self.appview_url if self.appview_port else None,
            "bridge_url": self.bridge_url if self.bridge_port else None,
            "processes": [asdict(p) for p in self.processes],
            "scratch_dirs": list(self.scratch_dirs),
        }

    # ------------------------------------------------------------------ the three processes
    def _record(self, name: str, proc: subprocess.Popen[bytes], port: int, log: Path, sig: int) -> None:
        start = _procs.start_time(proc.pid)
        self.processes.append(ProcessInfo(name, proc.pid, start, port, str(log), int(sig)))
        self._popens.append(proc)

    def _start_postgres(self) -> None:
        t0 = time.monotonic()
        workdir = self.run_dir / "postgres"
        for leftover in ("data", "sock"):  # of an earlier run in this run dir (nothing uses it now)
            shutil.rmtree(workdir / leftover, ignore_errors=True)
        pg = PostgresCluster(workdir, die_with_parent=not self.detach, max_connections=40)
        self.postgres = pg
        # throw-away: the AppView backfills at every start (the log stays in the run dir)
        if pg.base != pg.workdir:
            self.scratch_dirs.append(str(pg.base))
        else:
            self.scratch_dirs += [str(pg.data_dir), str(pg.socket_dir)]
        pg.start(timeout=self.startup_timeout)
        assert pg.proc is not None
        self._record("postgres", pg.proc, pg.port, pg.log_path, signal.SIGINT)
        pg.proc = None  # stopped (and reaped) through self.processes from now on
        self._check_loopback("postgres", pg.port, pg.log_path)
        self.timings["postgres"] = time.monotonic() - t0

    def _spawn(
        self, name: str, args: list[str], env_extra: dict[str, str]
    ) -> tuple[subprocess.Popen[bytes], Path]:
        from atdata_lab.sandbox._python312 import clean_env

        log_path = self.run_dir / f"{name}.log"
        env = clean_env(env_extra)
        with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
            log.write(
                f"--- atdata-lab sandbox {name} starting {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode()
            )
            log.flush()
            proc = subprocess.Popen(
                [str(self.install.python), *args],
                cwd=self.run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop signals exactly this group
                preexec_fn=None if self.detach else die_with_parent,
            )
        return proc, log_path

    def _start_bridge(self) -> None:
        t0 = time.monotonic()
        port = _procs.free_port(HOST)
        script = appview_scripts_dir() / "bridge.py"
        proc, log = self._spawn("bridge", [str(script), "--pds", self.pds_url, "--port", str(port)], {})
        self._record("bridge", proc, port, log, signal.SIGTERM)
        self.bridge_port = port
        self._wait(proc, "bridge", f"http://{HOST}:{port}/xrpc/_health", log)
        self._check_loopback("bridge", port, log)
        self.timings["bridge"] = time.monotonic() - t0

    def _start_appview(self) -> None:
        assert self.postgres is not None and self.bridge_port is not None
        t0 = time.monotonic()
        port = _procs.free_port(HOST)
        env = {
            "ATDATA_DATABASE_URL": self.postgres.dsn("postgres"),
            "ATDATA_HOSTNAME": HOST,
            "ATDATA_PORT": str(port),
            "ATDATA_DEV_MODE": "true",
            "ATDATA_RELAY_HOST": f"http://{HOST}:{self.bridge_port}",
            "ATDATA_JETSTREAM_URL": f"ws://{HOST}:{self.bridge_port}/subscribe",
            "ATDATA_JETSTREAM_COLLECTIONS": "science.alt.dataset.*",
            "ATDATA_PDS_ENDPOINT": self.pds_url,
        }
        script = appview_scripts_dir() / "appview.py"
        plc = self.plc_url.replace("://localhost:", f"://{HOST}:")
        proc, log = self._spawn("appview", [str(script), "--plc", plc, "--port", str(port)], env)
        self._record("appview", proc, port, log, signal.SIGTERM)
        self.appview_port = port
        self._wait(proc, "appview", f"http://{HOST}:{port}{_APPVIEW_HEALTH}", log)
        self._check_loopback("appview", port, log)
        self.timings["appview"] = time.monotonic() - t0

    def _wait(self, proc: subprocess.Popen[bytes], name: str, url: str, log: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = proc.poll()
            if code is not None:
                raise SandboxError(
                    f"the sandbox {name} exited with code {code} while starting; see {log}. End of it:\n"
                    f"{_tail(log)}"
                )
            try:
                resp = requests.get(url, timeout=2)
                if resp.status_code == 200:
                    json.loads(resp.content)
                    return
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"the sandbox {name} did not answer {url} within {self.startup_timeout:.0f} s "
                    f"(pass a larger startup_timeout= on a slow machine); see {log}. End of it:\n{_tail(log)}"
                )
            time.sleep(0.1)

    def _check_loopback(self, name: str, port: int, log: Path) -> None:
        info = next(p for p in self.processes if p.name == name)
        socks = _procs.listening_sockets(info.pid)
        if any(addr != HOST for addr, _ in socks) or (HOST, port) not in socks:
            raise SandboxError(
                f"the sandbox {name} listens on {socks}, expected only {HOST}:{port}: refusing to run it "
                f"(report this as a bug; its log is {log})"
            )
