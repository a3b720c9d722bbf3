"""The real-service fixtures work: Redis, PostgreSQL and SeaweedFS S3, on loopback only, with restarts.

Run with ``-s`` to see the measured startup times and memory of each server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.plugins.services import (
    LOOPBACK,
    PostgresServer,
    RedisServer,
    SeaweedS3Server,
    free_ports,
    listening_sockets,
    port_is_free,
)


def _report(record_property, name: str, server) -> None:
    rss = server.rss_bytes()
    record_property(f"{name}_startup_s", round(server.startup_seconds or 0, 3))
    record_property(f"{name}_rss_mib", round((rss or 0) / 2**20, 1))
    print(f"\n{name}: startup {server.startup_seconds:.3f} s, RSS {(rss or 0) / 2**20:.1f} MiB")


def _assert_loopback_only(pid: int, expected_port: int) -> list[tuple[str, int]]:
    socks = listening_sockets(pid)
    assert socks, f"process {pid} listens on nothing"
    assert expected_port in {port for _, port in socks}
    assert {ip for ip, _ in socks} == {LOOPBACK}, f"non-loopback listeners: {socks}"
    return socks


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(8)
    assert len(set(ports)) == 8
    assert all(port_is_free(p) for p in ports)


def test_listening_sockets_sees_a_loopback_listener():
    import os

    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        s.listen()
        port = s.getsockname()[1]
        assert (LOOPBACK, port) in listening_sockets(os.getpid())
        assert not port_is_free(port)


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_set_get(redis_server: RedisServer, redis_client, record_property):
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.host == LOOPBACK
    redis_client.set("atdata:hello", b"\x00world")
    assert redis_client.get("atdata:hello") == b"\x00world"
    redis_client.hset("atdata:entry:1", mapping={"name": "mnist", "shards": "2"})
    assert redis_client.hgetall("atdata:entry:1") == {b"name": b"mnist", b"shards": b"2"}
    _report(record_property, "redis", redis_server)


@pytest.mark.redis
def test_redis_client_fixture_starts_empty(redis_client):
    assert redis_client.dbsize() == 0
    redis_client.set("leftover", "1")  # the next test using redis_client must not see this


@pytest.mark.redis
def test_redis_client_fixture_starts_empty_again(redis_client):
    assert redis_client.get("leftover") is None


@pytest.mark.redis
def test_redis_aof_restart_keeps_data(redis_server_aof: RedisServer):
    client = redis_server_aof.client()
    key = f"aof:{uuid.uuid4().hex}"
    client.set(key, "survives")
    client.close()
    port, old_pid = redis_server_aof.port, redis_server_aof.pid
    redis_server_aof.restart()
    assert redis_server_aof.port == port and redis_server_aof.pid != old_pid
    client = redis_server_aof.client()
    try:
        assert client.get(key) == b"survives"
    finally:
        client.close()


@pytest.mark.redis
def test_redis_aof_survives_a_crash(start_redis):
    server = start_redis(aof=True)
    client = server.client()
    client.rpush("queue", "a", "b", "c")
    client.close()
    server.restart(crash=True)  # SIGKILL: only appendfsync=always keeps the write
    client = server.client()
    try:
        assert client.lrange("queue", 0, -1) == [b"a", b"b", b"c"]
    finally:
        client.close()


@pytest.mark.redis
def test_redis_without_aof_loses_data_on_restart(start_redis):
    # Shows the AOF test above is meaningful: the plain server really keeps nothing.
    server = start_redis(aof=False)
    client = server.client()
    client.set("k", "v")
    client.close()
    server.restart()
    client = server.client()
    try:
        assert client.get("k") is None
    finally:
        client.close()
    server.stop()
    assert server.pid is None and not server.ping()


@pytest.mark.redis
def test_redis_listens_on_loopback_only(redis_server: RedisServer):
    _assert_loopback_only(redis_server.pid, redis_server.port)


# --------------------------------------------------------------------------------------------
# S3 (SeaweedFS)
# --------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_put_get_via_s3fs(s3_server: SeaweedS3Server, s3_bucket: str, record_property):
    assert s3_server.endpoint_url == f"http://127.0.0.1:{s3_server.port}"
    fs = s3_server.fs()
    payload = bytes(range(256)) * 4096  # 1 MiB
    fs.pipe(f"{s3_bucket}/shards/data-000000.tar", payload)
    with fs.open(f"{s3_bucket}/shards/meta.json", "wb") as f:
        f.write(b'{"n": 1}')
    assert fs.cat(f"{s3_bucket}/shards/data-000000.tar") == payload
    assert fs.cat_file(f"{s3_bucket}/shards/data-000000.tar", start=1000, end=1010) == payload[1000:1010]
    keys = sorted(fs.find(s3_bucket))
    assert keys == [f"{s3_bucket}/shards/data-000000.tar", f"{s3_bucket}/shards/meta.json"]
    assert fs.info(f"{s3_bucket}/shards/data-000000.tar")["size"] == len(payload)
    _report(record_property, "seaweedfs", s3_server)


@pytest.mark.s3
def test_s3_storage_options_work_with_fsspec(s3_server: SeaweedS3Server, s3_bucket: str):
    import fsspec

    with fsspec.open(f"s3://{s3_bucket}/x.txt", "wb", **s3_server.storage_options) as f:
        f.write(b"via fsspec")
    assert s3_server.fs().cat(f"{s3_bucket}/x.txt") == b"via fsspec"


@pytest.mark.s3
def test_s3_bucket_fixture_gives_a_fresh_empty_bucket(s3_server: SeaweedS3Server, s3_bucket: str):
    fs = s3_server.fs()
    assert fs.find(s3_bucket) == []
    assert s3_bucket in {b.rstrip("/") for b in fs.ls("", refresh=True)}


@pytest.mark.s3
@pytest.mark.parametrize(
    "creds",
    [
        pytest.param({"secret": "wrong-secret"}, id="wrong-secret"),
        pytest.param({"key": "AKWRONGKEY0000000000"}, id="wrong-key"),
        pytest.param({"anon": True}, id="anonymous"),
    ],
)
def test_s3_wrong_credentials_are_refused(s3_server: SeaweedS3Server, s3_bucket: str, creds):
    good = s3_server.fs()
    good.pipe(f"{s3_bucket}/secret.bin", b"top secret")
    bad = s3_server.fs(**creds)
    with pytest.raises((PermissionError, OSError)):
        bad.cat(f"{s3_bucket}/secret.bin")
    with pytest.raises((PermissionError, OSError)):
        bad.pipe(f"{s3_bucket}/intruder.bin", b"x")
    with pytest.raises((PermissionError, OSError)):
        bad.ls(s3_bucket, refresh=True)
    assert sorted(good.find(s3_bucket)) == [f"{s3_bucket}/secret.bin"]


@pytest.mark.s3
def test_s3_listens_on_loopback_only(s3_server: SeaweedS3Server):
    socks = _assert_loopback_only(s3_server.pid, s3_server.port)
    ports = {p for _, p in socks}
    assert ports <= set(s3_server.ports.values()), f"unexpected extra listeners: {socks}"
    assert 9101 not in ports and 8181 not in ports  # the Lance and Iceberg listeners are off


@pytest.mark.s3
@pytest.mark.slow
def test_s3_restart_keeps_data_and_endpoint(s3_server: SeaweedS3Server, s3_bucket: str):
    s3_server.fs().pipe(f"{s3_bucket}/kept.bin", b"still here")
    endpoint, old_pid = s3_server.endpoint_url, s3_server.pid
    s3_server.restart()
    assert s3_server.endpoint_url == endpoint and s3_server.pid != old_pid
    assert s3_server.fs().cat(f"{s3_bucket}/kept.bin") == b"still here"
    print(f"\nseaweedfs restart: ready in {s3_server.startup_seconds:.2f} s")


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_server_is_private_loopback_and_unprivileged(
    postgres_server: PostgresServer, record_property
):
    import psycopg

    _report(record_property, "postgres", postgres_server)
    _assert_loopback_only(postgres_server.pid, postgres_server.port)
    with postgres_server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(postgres_server.dsn().replace(postgres_server.password, "wrong"), connect_timeout=5)
    uid = os.stat(f"/proc/{postgres_server.pid}").st_uid
    if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as Debian's postgres user
        import pwd

        assert uid == pwd.getpwnam("postgres").pw_uid != 0
    else:
        assert uid == os.geteuid()
    assert (postgres_server.data_dir.stat().st_mode & 0o077) == 0  # 0700 data and socket folders
    assert (postgres_server.socket_dir.stat().st_mode & 0o077) == 0


@pytest.mark.postgres
def test_postgres_dsn_fixture_gives_an_empty_database(postgres_server: PostgresServer, postgres_dsn: str):
    import psycopg

    with psycopg.connect(postgres_dsn) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,) and postgres_dsn.startswith(f"postgresql://atdata:{postgres_server.password}@")


_PG_CHILD = """
import sys, time
from pathlib import Path
from tests.plugins.services import start_postgres_server
server = start_postgres_server(Path(sys.argv[1]))
print(server.pid, server.base, flush=True)
time.sleep(600)
"""


@pytest.mark.postgres
def test_postgres_dies_with_the_process_that_started_it(postgres_server: PostgresServer, tmp_path):
    """A SIGKILLed test session leaves no postmaster behind, and its data folder is swept later."""
    from tests.plugins.services import pid_alive, sweep_stale_postgres_dirs

    child = subprocess.Popen(
        [sys.executable, "-c", _PG_CHILD, str(tmp_path / "pg")],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline().split()
        assert line, "the child could not start PostgreSQL"
        pid, base = int(line[0]), Path(line[1])
        assert Path(f"/proc/{pid}").exists()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        assert not pid_alive(pid), "the postmaster outlived the process that started it"
        sweep_stale_postgres_dirs()
        if base != tmp_path / "pg" / "try0":  # root: the data lived in a /tmp folder of its own
            assert not base.exists()
    finally:
        if child.poll() is None:
            child.kill()
