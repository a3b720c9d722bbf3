"""The sandbox: a real @atproto/pds and PLC directory on loopback (no mocks anywhere)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from atproto import Client

from atdata_lab.errors import AtdataLabError, SandboxError
from atdata_lab.sandbox import Sandbox, SandboxAccount, _procs, ensure_installed, generate_password
from atdata_lab.sandbox._install import js_dir

COLLECTION = "science.alt.dataset.schema"

pytestmark = pytest.mark.sandbox


def _login(pds_url: str, handle: str, password: str) -> Client:
    client = Client(base_url=pds_url)
    # A bare PDS serves no Bluesky app view: the SDK must not ask it for a profile.
    client.login(handle, password, fetch_bsky_profile=False)
    return client


def _schema_record(name: str) -> dict:
    return {"$type": COLLECTION, "name": name, "version": "1.0.0", "fields": [{"name": "x", "kind": "int"}]}


# --------------------------------------------------------------------------- shared sandbox


def test_health_and_server_description(sandbox: Sandbox) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.pds_url)
    health = requests.get(f"{sandbox.pds_url}/xrpc/_health", timeout=10)
    assert health.status_code == 200 and "version" in health.json()
    desc = requests.get(f"{sandbox.pds_url}/xrpc/com.atproto.server.describeServer", timeout=10).json()
    assert desc["availableUserDomains"] == [".test"]
    assert desc.get("inviteCodeRequired") is False
    env = sandbox.env()
    # (+ ATDATA_APPVIEW_URL when a test has started the session sandbox's AppView: test_sandbox_appview.py)
    assert (
        {"ATDATA_PDS_URL", "ATDATA_TRUSTED_HOSTS"}
        <= set(env)
        <= {
            "ATDATA_PDS_URL",
            "ATDATA_TRUSTED_HOSTS",
            "ATDATA_APPVIEW_URL",
        }
    )
    assert env["ATDATA_PDS_URL"] == sandbox.pds_url
    # the trust policy refuses loopback hosts named by other people's records: the sandbox's PDS is
    # allowed by configuration
    assert f"127.0.0.1:{sandbox.pds_port}" in env["ATDATA_TRUSTED_HOSTS"].split(",")


def test_binds_to_loopback_only(sandbox: Sandbox) -> None:
    socks = _procs.listening_sockets(sandbox.pid)
    assert {port for _, port in socks} == {sandbox.pds_port, sandbox.plc_port}
    assert all(addr == "127.0.0.1" for addr, _ in socks), socks
    # Cross-check against the kernel's own table, not only through our helper's inode matching.
    listening = [
        line.split()[1]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for line in Path(table).read_text().splitlines()[1:]
        if line.split()[3] == "0A"
    ]
    for port in (sandbox.pds_port, sandbox.plc_port):
        on_port = [a for a in listening if int(a.rsplit(":", 1)[1], 16) == port]
        assert on_port == [f"0100007F:{port:04X}"], on_port


def test_create_account_and_login_with_sdk(sandbox: Sandbox) -> None:
    account = sandbox.create_account()
    handle, password, did = account
    assert re.fullmatch(r"t[0-9a-f]{10}\.test", handle)
    assert re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", password)
    assert did.startswith("did:plc:")
    assert password not in repr(account)
    client = _login(sandbox.pds_url, handle, password)
    assert client._session.did == did
    resolved = client.com.atproto.identity.resolve_handle({"handle": handle})
    assert resolved.did == did


def test_named_account_and_handle_rules(sandbox: Sandbox) -> None:
    name = f"n{os.urandom(4).hex()}"
    account = sandbox.create_account(name)  # ".test" is appended
    assert account.handle == f"{name}.test"
    with pytest.raises(SandboxError, match=r"end in \.test"):
        sandbox.create_account("alice.example.com")
    with pytest.raises(SandboxError, match="createAccount failed"):
        sandbox.create_account(account.handle)  # taken
    assert issubclass(SandboxError, AtdataLabError) and issubclass(SandboxError, RuntimeError)


def test_unknown_collection_record_round_trips(sandbox: Sandbox, pds_account: SandboxAccount) -> None:
    assert os.environ["ATDATA_PDS_URL"] == sandbox.pds_url
    assert os.environ["ATDATA_HANDLE"] == pds_account.handle
    client = _login(sandbox.pds_url, pds_account.handle, pds_account.password)
    record = _schema_record("mnist-like")
    created = client.com.atproto.repo.create_record(
        {"repo": pds_account.did, "collection": COLLECTION, "record": record}
    )
    assert created.uri.startswith(f"at://{pds_account.did}/{COLLECTION}/")
    assert created.cid.startswith("bafyrei")
    assert created.validation_status == "unknown"
    got = client.com.atproto.repo.get_record(
        {"repo": pds_account.did, "collection": COLLECTION, "rkey": created.uri.rsplit("/", 1)[1]}
    )
    assert got.cid == created.cid
    assert json.loads(json.dumps(got.value, default=dict)) == record


def test_accounts_do_not_share_records(sandbox: Sandbox, pds_account: SandboxAccount) -> None:
    client = _login(sandbox.pds_url, pds_account.handle, pds_account.password)
    listed = client.com.atproto.repo.list_records({"repo": pds_account.did, "collection": COLLECTION})
    assert listed.records == []


def test_passwords_never_reach_the_log(sandbox: Sandbox) -> None:
    account = sandbox.create_account()
    _login(sandbox.pds_url, account.handle, account.password)
    text = sandbox.log_path.read_text()
    assert account.handle.split(".")[0] in text or "createAccount" in text  # the log is being written
    assert account.password not in text
    assert sandbox._secrets["adminPassword"] not in text
    assert sandbox._secrets["jwtSecret"] not in text


def test_install_is_cached_and_pinned(sandbox: Sandbox) -> None:
    again = ensure_installed(progress=False)
    assert not again.installed_now and again.deps_dir == sandbox.install.deps_dir
    assert (again.deps_dir / "node_modules" / "@atproto" / "pds").is_dir()
    out = subprocess.run([str(again.node), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("v22.")
    # node_modules lives in the cache, never in the package.
    assert not (js_dir() / "node_modules").exists()
    lock = json.loads((js_dir() / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@atproto/pds"]["version"] == "0.5.35"
    assert lock["packages"]["node_modules/@did-plc/server"]["version"] == "0.0.1"
    for path, entry in lock["packages"].items():
        if path:
            assert "resolved" not in entry, f"{path} records a download address"
            assert entry.get("integrity", "").startswith("sha512-"), path


def test_generate_password_is_random() -> None:
    assert len({generate_password() for _ in range(50)}) == 50


# --------------------------------------------------------------------------- own sandboxes


@pytest.mark.slow
def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    sb = Sandbox(run_dir=tmp_path, progress=False)
    with sb:
        pid, ports = sb.pid, (sb.pds_port, sb.plc_port)
        scratch = sb._tmp_dir
        assert _procs.is_alive(pid) and scratch.is_dir()
        assert os.getpgid(pid) == pid  # its own process group: stop() signals only that
        assert sb.rss_bytes() > 50 * 2**20
    assert not sb.is_running()
    assert not _procs.is_alive(pid)
    assert _procs.listening_sockets(pid) == []
    for port in ports:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/xrpc/_health", timeout=2)
    assert not scratch.exists()
    sb.stop()  # a second stop is harmless


@pytest.mark.slow
def test_persistent_data_dir_survives_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Sandbox(data_dir=data, progress=False) as sb:
        account = sb.create_account(f"p{os.urandom(4).hex()}.test")
        client = _login(sb.pds_url, account.handle, account.password)
        created = client.com.atproto.repo.create_record(
            {"repo": account.did, "collection": COLLECTION, "record": _schema_record("kept")}
        )
        first_url = sb.pds_url
        with pytest.raises(SandboxError, match="in use"):
            Sandbox(data_dir=data, progress=False).start()
    secrets_file = data / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert (data / "plc-ops.jsonl").read_text().count(account.did) == 1
    with Sandbox(data_dir=data, progress=False) as sb:
        assert sb.pds_url == first_url  # same port again: DID documents stay right
        client = _login(sb.pds_url, account.handle, account.password)
        assert client._session.did == account.did
        doc = requests.get(f"http://127.0.0.1:{sb.plc_port}/{account.did}", timeout=10).json()
        assert doc["alsoKnownAs"] == [f"at://{account.handle}"]
        assert doc["service"][0]["serviceEndpoint"] == sb.pds_url
        got = client.com.atproto.repo.get_record(
            {"repo": account.did, "collection": COLLECTION, "rkey": created.uri.rsplit("/", 1)[1]}
        )
        assert got.cid == created.cid
        # New writes after the restart work too (the repo's signing key and the PLC agree).
        client.com.atproto.repo.create_record(
            {"repo": account.did, "collection": COLLECTION, "record": _schema_record("after")}
        )
    assert account.password not in (data / "server.log").read_text()


@pytest.mark.slow
def test_cli_start_status_stop(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cli = [sys.executable, "-m", "atdata_lab.cli", "sandbox"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args, "--run-dir", str(run_dir)], capture_output=True, text=True, env=env, timeout=300
        )

    started = run("start", "--quiet", "--account", "carol.test")
    try:
        assert started.returncode == 0, started.stderr
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", started.stdout, re.M))
        assert set(exports) == {"ATDATA_PDS_URL", "ATDATA_HANDLE", "ATDATA_PASSWORD", "ATDATA_TRUSTED_HOSTS"}
        assert exports["ATDATA_PDS_URL"].removeprefix("http://") in exports["ATDATA_TRUSTED_HOSTS"].split(",")
        assert exports["ATDATA_HANDLE"] == "carol.test"
        state = json.loads((run_dir / "state.json").read_text())
        assert state["pds_url"] == exports["ATDATA_PDS_URL"]
        assert exports["ATDATA_PASSWORD"] not in (run_dir / "state.json").read_text()
        assert all(addr == "127.0.0.1" for addr, _ in _procs.listening_sockets(state["pid"]))
        # the CLI process has exited; the server runs on, detached
        client = _login(exports["ATDATA_PDS_URL"], exports["ATDATA_HANDLE"], exports["ATDATA_PASSWORD"])
        assert client._session.handle == "carol.test"

        status = run("status")
        assert status.returncode == 0 and exports["ATDATA_PDS_URL"] in status.stdout
        again = run("start", "--quiet")
        assert again.returncode == 0 and "already running" in again.stdout
        assert f"export ATDATA_PDS_URL={exports['ATDATA_PDS_URL']}" in again.stdout
    finally:
        stopped = run("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    deadline = time.monotonic() + 5
    while _procs.is_alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _procs.is_alive(state["pid"])
    assert not Path(state["scratch_dir"]).exists()
    assert run("status").returncode == 3
    assert run("stop").returncode == 0  # idempotent


@pytest.mark.slow
def test_server_stops_when_its_python_process_dies(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from atdata_lab.sandbox import Sandbox\n"
        f"sb = Sandbox(run_dir={str(tmp_path)!r}, progress=False).start()\n"
        "print(sb.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        server_pid = int(owner.stdout.readline())
        assert _procs.is_alive(server_pid)
    finally:
        owner.kill()  # SIGKILL: no atexit, no cleanup in Python
        owner.wait()
    deadline = time.monotonic() + 15
    while _procs.is_alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _procs.is_alive(server_pid), "the server outlived the Python process that started it"
