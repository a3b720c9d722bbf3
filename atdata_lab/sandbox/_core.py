"""The :class:`Sandbox`: a real reference PDS and PLC directory on loopback, started from Python."""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import requests

from atdata_lab.errors import SandboxError
from atdata_lab.sandbox import _procs
from atdata_lab.sandbox._install import Installation, cache_root, ensure_installed

if TYPE_CHECKING:
    from atdata_lab.sandbox._appview import AppViewNetwork

__all__ = ["Sandbox", "SandboxAccount", "generate_password"]

HOST = "127.0.0.1"
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_PASSWORD_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_SECRETS_FILE = "secrets.json"
_CONFIG_FILE = "sandbox.json"
_PID_FILE = "server.pid"
_LOG_FILE = "server.log"
_PLC_OPS_FILE = "plc-ops.jsonl"


class SandboxAccount(NamedTuple):
    """An account created on the sandbox PDS. Unpacks as ``handle, password, did``.

    Attributes:
        handle: The account handle, e.g. ``"alice.test"``.
        password: The generated (or given) password; not shown by ``repr``.
        did: The account DID (``did:plc:...``).
    """

    handle: str
    password: str
    did: str

    def __repr__(self) -> str:
        return f"SandboxAccount(handle={self.handle!r}, password='***', did={self.did!r})"

    def env(self) -> dict[str, str]:
        """``ATDATA_HANDLE`` and ``ATDATA_PASSWORD`` for this account."""
        return {"ATDATA_HANDLE": self.handle, "ATDATA_PASSWORD": self.password}


def trusted_hosts_with(url: str, hosts: str | None = None) -> str:
    """``hosts`` (default ``$ATDATA_TRUSTED_HOSTS``) with the ``host:port`` of ``url`` added (once)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    mine = f"{parts.hostname}:{parts.port}"
    base = os.environ.get("ATDATA_TRUSTED_HOSTS", "") if hosts is None else hosts
    have = [h.strip() for h in base.split(",") if h.strip()]
    return ",".join(have if mine in have else [*have, mine])


def generate_password() -> str:
    """A random app-password-like secret, e.g. ``"k3qz-a7mr-xp2d-94bt"`` (80 bits)."""
    groups = ("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


def _new_secrets() -> dict[str, str]:
    while True:
        key = secrets.token_bytes(32)
        if 0 < int.from_bytes(key, "big") < _SECP256K1_ORDER:
            break
    return {
        "jwtSecret": secrets.token_hex(32),
        "adminPassword": secrets.token_urlsafe(24),
        "plcRotationKeyHex": key.hex(),
    }


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by the owner only (mode 0600), atomically."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


_LIVE: set[Sandbox] = set()  # started in this process, not detached: stopped at exit


@atexit.register
def _stop_all_at_exit() -> None:
    for sb in list(_LIVE):
        try:
            sb.stop()
        except Exception:
            pass


class Sandbox:
    """A real ``@atproto/pds`` and a local PLC directory in one Node process on 127.0.0.1.

    The first start installs Node 22 and the servers into the cache (about 2 minutes, see
    :func:`atdata_lab.sandbox.ensure_installed`); later starts take a few seconds.

    Example::

        with Sandbox() as sb:
            handle, password, did = sb.create_account("alice.test")
            client = atproto.Client(base_url=sb.pds_url)
            client.login(handle, password, fetch_bsky_profile=False)

    Args:
        data_dir: Keep the PDS data here so accounts and records survive a restart (the PLC
            operations and the server secrets are kept beside it, secrets with mode 0600).
            ``None`` (default): a throw-away folder removed by :meth:`stop`.
        pds_port: TCP port of the PDS; default a free one (with ``data_dir``: the one used last
            time when still free, so DID documents keep pointing at it).
        plc_port: TCP port of the PLC directory; default a free one.
        progress: ``True`` prints install progress to stderr, ``False`` is silent, a callable
            receives :class:`~atdata_lab.progress.ProgressEvent` objects.
        startup_timeout: Seconds to wait for the PDS to answer ``/xrpc/_health``.
        log_level: Server log level (``"info"`` logs one line per request, ``"warn"`` less).
        blob_upload_limit: Largest blob the PDS accepts, in bytes.
        run_dir: Where the log and pid file go; default ``data_dir`` or a temporary folder.
        pds_env: Extra PDS settings as the PDS's own ``PDS_*`` environment variables, e.g.
            ``{"PDS_RATE_LIMITS_ENABLED": "true"}`` (its rate limits are off by default). They are
            read by the PDS's ``readEnv()`` and applied over the sandbox's settings; a variable
            the PDS does not know is ignored (and named in the server log).
        appview: Also start the AppView network: a private PostgreSQL, the bridge and the real
            ``atdata-app`` AppView in its own Python 3.12 venv (installed once; see
            :mod:`atdata_lab.sandbox._appview`). Needs Python 3.12: without it :meth:`start` raises
            :class:`~atdata_lab.errors.SandboxError` saying how to get it, before starting anything.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        pds_port: int | None = None,
        plc_port: int | None = None,
        progress: Any = True,
        startup_timeout: float = 120.0,
        log_level: str = "info",
        blob_upload_limit: int = 5 * 1024 * 1024,
        run_dir: str | os.PathLike[str] | None = None,
        pds_env: dict[str, str] | None = None,
        appview: bool = False,
    ) -> None:
        bad = [k for k in (pds_env or {}) if not (isinstance(k, str) and k.startswith("PDS_"))]
        if bad:
            raise SandboxError(f"pds_env takes the PDS's PDS_* environment variables, not {bad!r}")
        self.pds_env: dict[str, str] = {k: str(v) for k, v in (pds_env or {}).items()}
        self.data_dir: Path | None = Path(data_dir).expanduser().resolve() if data_dir is not None else None
        self._requested_run_dir = Path(run_dir).expanduser().resolve() if run_dir is not None else None
        self._pds_port_wanted = pds_port
        self._plc_port_wanted = plc_port
        self._progress = progress
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.blob_upload_limit = blob_upload_limit
        self._proc: subprocess.Popen[bytes] | None = None
        self._detached_pid: int | None = None
        self._detached_start: int | None = None
        self._store: Path | None = None
        self._tmp_dir: Path | None = None
        self.run_dir: Path | None = None
        self.pds_port: int | None = None
        self.plc_port: int | None = None
        self.install: Installation | None = None
        self.started_in: float | None = None
        self.appview_started_in: float | None = None
        self._secrets: dict[str, str] | None = None
        self.appview = appview
        self.network: AppViewNetwork | None = None
        self._network_state: dict[str, Any] | None = None  # a detached network's state (CLI)

    # ----------------------------------------------------------------- properties
    @property
    def pds_url(self) -> str:
        """Base URL of the PDS, e.g. ``http://127.0.0.1:41234`` (the sandbox must be started)."""
        if self.pds_port is None:
            raise SandboxError("the sandbox is not started: call sb.start() or use `with Sandbox() as sb:`")
        return f"http://{HOST}:{self.pds_port}"

    @property
    def plc_url(self) -> str:
        """URL of the PLC directory as the PDS sees it (``http://localhost:PORT``)."""
        if self.plc_port is None:
            raise SandboxError("the sandbox is not started: call sb.start() or use `with Sandbox() as sb:`")
        return f"http://localhost:{self.plc_port}"

    @property
    def appview_url(self) -> str:
        """Base URL of the AppView, e.g. ``http://127.0.0.1:41236`` (needs ``appview=True``)."""
        if self.network is not None and self.network.appview_port is not None:
            return self.network.appview_url
        if self._network_state and self._network_state.get("appview_url"):
            return str(self._network_state["appview_url"])
        raise SandboxError(
            "the AppView is not running: start the sandbox with Sandbox(appview=True) "
            "(or `atdata-lab sandbox start --appview`)"
        )

    def processes(self) -> dict[str, int]:
        """``{name: pid}`` of every running process: ``"pds"`` (PDS + PLC) and, with the AppView,
        ``"postgres"``, ``"bridge"`` and ``"appview"``."""
        out: dict[str, int] = {}
        if self.pid is not None and self.is_running():
            out["pds"] = self.pid
        infos = (
            self.network.state()["processes"]
            if self.network
            else (self._network_state or {}).get("processes", [])
        )
        for info in infos:
            if _procs.is_alive(int(info["pid"])):
                out[str(info["name"])] = int(info["pid"])
        return out

    @property
    def pid(self) -> int | None:
        """Process id of the Node server (it leads its own process group), or None if stopped."""
        if self._proc is not None:
            return self._proc.pid
        return self._detached_pid

    @property
    def log_path(self) -> Path | None:
        """The server log file (pino JSON lines) in the run dir."""
        return self.run_dir / _LOG_FILE if self.run_dir else None

    def is_running(self) -> bool:
        """True while the server process is alive."""
        if self._proc is not None:
            return self._proc.poll() is None
        return self._detached_pid is not None and _procs.is_alive(self._detached_pid)

    def env(self, account: SandboxAccount | None = None) -> dict[str, str]:
        """Environment variables that point atdata-lab at this sandbox.

        Args:
            account: Also include ``ATDATA_HANDLE`` / ``ATDATA_PASSWORD`` for this account.

        Returns:
            ``{"ATDATA_PDS_URL": ..., "ATDATA_TRUSTED_HOSTS": ...}`` (plus the account's variables if
            given), and ``ATDATA_APPVIEW_URL`` while the AppView runs. ``ATDATA_TRUSTED_HOSTS`` adds this PDS's ``127.0.0.1:<port>`` to the hosts already
            trusted: the trust policy refuses loopback addresses named by other people's records, and
            this is how the sandbox's own PDS (and AppView) is allowed (see
            :class:`~atdata_lab.urls.TrustPolicy`).
        """
        env = {"ATDATA_PDS_URL": self.pds_url, "ATDATA_TRUSTED_HOSTS": trusted_hosts_with(self.pds_url)}
        if self._appview_running():
            env["ATDATA_APPVIEW_URL"] = self.appview_url
            env["ATDATA_TRUSTED_HOSTS"] = trusted_hosts_with(self.appview_url, env["ATDATA_TRUSTED_HOSTS"])
        if account is not None:
            env.update(account.env())
        return env

    def _appview_running(self) -> bool:
        if self.network is not None:
            return self.network.appview_port is not None
        return bool(self._network_state and self._network_state.get("appview_url"))

    def rss_bytes(self) -> int | None:
        """Resident memory of the server process in bytes (None when stopped)."""
        pid = self.pid
        return _procs.rss_bytes(pid) if pid else None

    def listening_sockets(self) -> list[tuple[str, int]]:
        """``(address, port)`` of every TCP socket the server listens on (all 127.0.0.1)."""
        pid = self.pid
        return _procs.listening_sockets(pid) if pid else []

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.pds_url}" if self.is_running() else "stopped"
        if self.is_running() and self._appview_running():
            state += f" with the AppView at {self.appview_url}"
        where = f", data_dir={str(self.data_dir)!r}" if self.data_dir else ""
        return f"<Sandbox {state}{where}>"

    def start(self, *, detach: bool = False) -> Sandbox:
        """Install if needed, start the servers and wait until the PDS is healthy.

        Args:
            detach: Leave the server running when this Python process exits (used by the
                ``atdata-lab sandbox start`` command). Otherwise the server stops with it.

        Returns:
            ``self``, started.

        Raises:
            SandboxError: The install failed, the data dir is in use, or the server did not
                become healthy in time (the message carries the end of the server log).
        """
        if self.is_running():
            return self
        appview_install = None
        if self.appview:  # before anything starts: no Python 3.12 -> a clear error, nothing left running
            from atdata_lab.sandbox._appview_install import ensure_appview_installed

            appview_install = ensure_appview_installed(progress=self._progress)
        self.install = ensure_installed(progress=self._progress)
        self._prepare_dirs()
        saved = self._load_config()
        attempts = 3
        for attempt in range(1, attempts + 1):
            pds_port, plc_port = self._choose_ports(saved)
            try:
                self._launch(pds_port, plc_port, detach=detach)
                break
            except _PortInUse:
                if attempt == attempts or (self._pds_port_wanted and self._plc_port_wanted):
                    raise SandboxError(
                        f"ports {pds_port}/{plc_port} on {HOST} are in use: pass other pds_port=/plc_port= "
                        "or stop whatever listens there"
                    ) from None
                saved = {}
        self._save_config()
        if not detach:
            _LIVE.add(self)
        if appview_install is not None:
            self._start_network(appview_install, detach=detach)
        return self

    def start_appview(self) -> Sandbox:
        """Start the AppView network beside this running sandbox (as ``appview=True`` would have).

        Does nothing when it already runs. Raises :class:`~atdata_lab.errors.SandboxError` when it
        cannot start (no Python 3.12, or a process failed; the message names its log file); the PDS
        keeps running either way.
        """
        from atdata_lab.sandbox._appview_install import ensure_appview_installed

        if self._proc is None or not self.is_running():
            raise SandboxError(
                "start the sandbox first (sb.start()); a detached one is changed by the CLI only"
            )
        if self.network is not None and self.network.is_running():
            return self
        self.stop_appview()
        install = ensure_appview_installed(progress=self._progress)
        self._start_network(install, detach=False, stop_all_on_failure=False)
        self.appview = True
        return self

    def stop_appview(self, timeout: float = 10.0) -> None:
        """Stop the AppView, the bridge and PostgreSQL; the PDS keeps running. Safe to call twice.

        :meth:`start_appview` starts a fresh network again (an empty database that backfills).
        """
        network, self.network = self.network, None
        if network is not None:
            network.stop(timeout=timeout)

    def _start_network(self, install: Any, *, detach: bool, stop_all_on_failure: bool = True) -> None:
        from atdata_lab.sandbox._appview import AppViewNetwork

        assert self.run_dir is not None
        started = time.monotonic()
        network = AppViewNetwork(
            install,
            self.run_dir,
            pds_url=self.pds_url,
            plc_url=self.plc_url,
            detach=detach,
            startup_timeout=min(self.startup_timeout, 90.0),
        )
        try:
            network.start()  # stops what it started when it fails
        except BaseException:
            if stop_all_on_failure:
                self.stop()
            raise
        self.appview_started_in = time.monotonic() - started
        if detach:
            self._network_state = network.state()
        else:
            self.network = network

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM to its process group, SIGKILL after ``timeout`` seconds).

        Removes the throw-away data folder when there is no ``data_dir``. Safe to call twice.
        """
        _LIVE.discard(self)
        if self.network is not None:
            self.stop_appview(timeout=timeout)
        elif self._network_state:
            from atdata_lab.sandbox._appview import stop_processes

            stop_processes(self._network_state.get("processes", []), timeout=timeout)
            for d in self._network_state.get("scratch_dirs", []):
                shutil.rmtree(d, ignore_errors=True)
        self._network_state = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                _procs.stop_process_group(proc.pid, expected_start=None, timeout=timeout)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed above
                pass
        elif self._detached_pid is not None:
            _procs.stop_process_group(
                self._detached_pid, expected_start=self._detached_start, timeout=timeout
            )
        self._detached_pid = None
        if self.run_dir is not None:
            _unlink_quietly(self._pid_file())
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    # ----------------------------------------------------------------- accounts
    def create_account(
        self, handle: str | None = None, password: str | None = None, *, email: str | None = None
    ) -> SandboxAccount:
        """Create an account on the sandbox PDS (``com.atproto.server.createAccount``).

        Args:
            handle: E.g. ``"alice.test"`` (``"alice"`` gets ``.test`` appended); default a
                random ``t<hex>.test``. The first label takes 3 to 18 letters, digits or '-'.
            password: Default a random app-password-like secret (see :func:`generate_password`).
            email: Default ``<first label>@example.com`` (the PDS requires one; no mail is sent).

        Returns:
            A :class:`SandboxAccount` ``(handle, password, did)``.

        Raises:
            SandboxError: The PDS refused (handle taken or invalid); the message says why.
        """
        if handle is None:
            handle = f"t{secrets.token_hex(5)}.test"
        elif "." not in handle:
            handle = f"{handle}.test"
        if not handle.endswith(".test"):
            raise SandboxError(f"sandbox handles end in .test: use {handle.split('.')[0]}.test, not {handle}")
        password = password or generate_password()
        email = email or f"{handle.split('.')[0]}@example.com"
        resp = self._xrpc_post(
            "com.atproto.server.createAccount", {"handle": handle, "email": email, "password": password}
        )
        body = resp.json()
        return SandboxAccount(handle=body["handle"], password=password, did=body["did"])

    def _xrpc_post(self, nsid: str, payload: dict[str, Any]) -> requests.Response:
        try:
            resp = requests.post(f"{self.pds_url}/xrpc/{nsid}", json=payload, timeout=60)
        except requests.RequestException as exc:
            raise SandboxError(f"the sandbox PDS at {self.pds_url} did not answer {nsid}: {exc}") from exc
        if resp.status_code != 200:
            try:
                err = resp.json()
                why = f"{err.get('error')}: {err.get('message')}"
            except ValueError:
                why = resp.text[:300]
            raise SandboxError(f"{nsid} failed with HTTP {resp.status_code}: {why}")
        return resp

    def state(self) -> dict[str, Any]:
        """What a later process needs to find and stop this server (no secrets)."""
        pid = self.pid
        return {
            "pid": pid,
            "start_time": _procs.start_time(pid) if pid else None,
            "pds_url": self.pds_url,
            "plc_url": self.plc_url,
            "pds_port": self.pds_port,
            "plc_port": self.plc_port,
            "data_dir": str(self.data_dir) if self.data_dir else None,
            "scratch_dir": str(self._tmp_dir) if self._tmp_dir else None,
            "pid_file": str(self._pid_file()),
            "log": str(self.log_path),
            **self._network_info(),
        }

    def _network_info(self) -> dict[str, Any]:
        if self.network is not None:
            return {"appview": self.network.state()}
        if self._network_state:
            return {"appview": dict(self._network_state)}
        return {}

    # ---------------------------------------------------------------- internals
    def _pid_file(self) -> Path:
        base = self.data_dir or self.run_dir
        assert base is not None
        return base / _PID_FILE

    def _prepare_dirs(self) -> None:
        """Pick run dir and storage; refuse a data/run dir that a live sandbox is using."""
        self.run_dir = self._requested_run_dir or self.data_dir
        if self.run_dir is not None:
            self._check_not_in_use()  # before creating anything
        if self.data_dir is not None:
            if not self.data_dir.exists():
                self.data_dir.mkdir(parents=True, mode=0o700)
            self._store = self.data_dir
        else:
            if self.run_dir is not None:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            self._tmp_dir = Path(tempfile.mkdtemp(prefix="atdata-sandbox-", dir=self.run_dir))
            self._store = self._tmp_dir
        if self.run_dir is None:
            self.run_dir = self._store
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def _check_not_in_use(self) -> None:
        pid_file = self._pid_file()
        try:
            info = json.loads(pid_file.read_text())
        except (OSError, ValueError):
            return
        pid, started = int(info.get("pid", 0)), info.get("start_time")
        if pid and _procs.is_alive(pid) and _procs.start_time(pid) == started:
            raise SandboxError(
                f"{self.run_dir} is in use by a running sandbox (pid {pid}): stop it first "
                "(`atdata-lab sandbox stop`, or sb.stop()) or use another data_dir"
            )

    def _load_config(self) -> dict[str, Any]:
        if self.data_dir is None:
            self._secrets = _new_secrets()
            return {}
        secrets_path = self.data_dir / _SECRETS_FILE
        if secrets_path.exists():
            if secrets_path.stat().st_mode & 0o077:
                os.chmod(secrets_path, 0o600)
            self._secrets = json.loads(secrets_path.read_text())
        else:
            self._secrets = _new_secrets()
            _write_private(secrets_path, self._secrets)
        try:
            return json.loads((self.data_dir / _CONFIG_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _save_config(self) -> None:
        if self.data_dir is None:
            return
        cfg = {"pds_port": self.pds_port, "plc_port": self.plc_port}
        (self.data_dir / _CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")

    def _choose_ports(self, saved: dict[str, Any]) -> tuple[int, int]:
        def pick(wanted: int | None, previous: Any, taken: set[int]) -> int:
            if wanted:
                return wanted
            if isinstance(previous, int) and previous not in taken and _port_free(previous):
                return previous
            while True:
                port = _procs.free_port(HOST)
                if port not in taken:
                    return port

        pds = pick(self._pds_port_wanted, saved.get("pds_port"), set())
        plc = pick(self._plc_port_wanted, saved.get("plc_port"), {pds})
        if saved.get("pds_port") and pds != saved["pds_port"]:
            _warn(
                f"port {saved['pds_port']} of the last run is taken; the PDS now listens on {pds}. "
                "DID documents of existing accounts still name the old port (pass pds_port= to keep it)."
            )
        return pds, plc

    def _launch(self, pds_port: int, plc_port: int, *, detach: bool) -> None:
        assert self.install is not None and self.run_dir is not None and self._secrets is not None
        store = self._store
        assert store is not None
        config = {
            "host": HOST,
            "pdsPort": pds_port,
            "plcPort": plc_port,
            "publicUrl": f"http://{HOST}:{pds_port}",
            "dataDirectory": str(store / "pds"),
            "blobstoreDir": str(store / "pds" / "blobs"),
            "plcOpsFile": str(store / _PLC_OPS_FILE) if self.data_dir is not None else None,
            "blobUploadLimit": self.blob_upload_limit,
            "parentPid": None if detach else os.getpid(),
            "pdsEnv": dict(self.pds_env),
            **self._secrets,
        }
        env = dict(os.environ)
        env.pop("NODE_OPTIONS", None)
        env.update(
            {
                "PATH": f"{self.install.node_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}",
                "LOG_ENABLED": "true",
                "LOG_LEVEL": self.log_level,
                "NODE_ENV": "production",
            }
        )
        log_path = self.run_dir / _LOG_FILE
        started = time.monotonic()
        with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
            log.write(f"--- atdata-lab sandbox starting {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [str(self.install.node), str(self.install.server_script)],
                cwd=self.install.deps_dir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals exactly this group
            )
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(config).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        self._proc = proc
        self.pds_port, self.plc_port = pds_port, plc_port
        try:
            self._wait_healthy(proc, log_path)
            self._assert_loopback_only(proc.pid)
        except BaseException:
            self.stop_process_only()
            self.pds_port = self.plc_port = None
            raise
        self.started_in = time.monotonic() - started
        self._pid_file().write_text(json.dumps({"pid": proc.pid, "start_time": _procs.start_time(proc.pid)}))
        if detach:
            self._detached_pid = proc.pid
            self._detached_start = _procs.start_time(proc.pid)
            # Forget the child: it outlives us, and Popen must not warn about it.
            proc.returncode = 0
            self._proc = None

    def stop_process_only(self) -> None:
        """Stop the server process but keep the run dir (used when startup fails)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            _procs.stop_process_group(proc.pid, expected_start=None, timeout=5.0)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass

    def _wait_healthy(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://{HOST}:{self.pds_port}/xrpc/_health"
        while True:
            code = proc.poll()
            if code is not None:
                tail = _tail(log_path)
                if '"port in use"' in tail or "EADDRINUSE" in tail:
                    raise _PortInUse()
                raise SandboxError(
                    f"the sandbox server exited with code {code} while starting; end of {log_path}:\n{tail}"
                )
            try:
                resp = requests.get(url, timeout=2)
                if resp.status_code == 200 and "version" in resp.json():
                    return
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"the sandbox PDS did not answer {url} within {self.startup_timeout:.0f} s "
                    f"(pass a larger startup_timeout= on a slow machine); end of {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.2)

    def _assert_loopback_only(self, pid: int) -> None:
        socks = _procs.listening_sockets(pid)
        wrong = [s for s in socks if s[0] != HOST]
        ports = {p for _, p in socks}
        if wrong or not {self.pds_port, self.plc_port} <= ports:
            raise SandboxError(
                f"the sandbox server listens on {socks}, expected only {HOST}:{self.pds_port} and "
                f"{HOST}:{self.plc_port}: refusing to run it (report this as a bug)"
            )


class _PortInUse(Exception):
    pass


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Like Node (libuv), allow ports in TIME_WAIT: right after a stop the old port is one.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, RuntimeWarning, stacklevel=3)


def default_run_dir() -> Path:
    """Where ``atdata-lab sandbox start`` keeps its state: ``<cache>/sandbox/run``."""
    return Path(os.environ.get("ATDATA_LAB_SANDBOX_RUN_DIR") or cache_root() / "run")
