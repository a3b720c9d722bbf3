"""The sandbox as a small network: the real AppView (atdata-app 0.4.0b1) indexes what our client
publishes on the sandbox PDS, live through the bridge's Jetstream and by backfill at its start;
``status``/``stop`` cover every process, and everything listens on 127.0.0.1 only.

All real parts: the reference PDS + PLC, Debian's PostgreSQL, the bridge, and atdata-app unmodified in
its own Python 3.12 venv. The one stand-in is in ``test_no_python312_is_a_clear_error``: a machine
without Python 3.12 cannot be produced on demand, so the finder is patched to find none.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.errors import SandboxError
from atdata_lab.sandbox import Sandbox, SandboxAccount, _procs
from atdata_lab.sandbox._appview import AppViewNetwork
from atdata_lab.sandbox._appview_install import ensure_appview_installed
from atdata_lab.sandbox._postgres import sweep_stale_postgres_dirs
from tests.plugins.sandbox import require_appview, wait_until_indexed

pytestmark = [pytest.mark.sandbox, pytest.mark.appview]

XRPC = "/xrpc/science.alt.dataset."


@atdata.packable
class AppViewRow:
    x: NDArray
    label: int


def _publish(account: SandboxAccount, name: str, word: str) -> str:
    """Write a small dataset and promote it with our client (schema + entry + label records)."""
    client = Atmosphere.login(account.handle, account.password)
    index = atdata.Index(atmosphere=client, data_store=atdata.LocalDiskStore())
    rows = [AppViewRow(x=np.arange(4, dtype=np.int64) + i, label=i % 3) for i in range(20)]
    index.write(rows, name=name, maxcount=10, progress=False)
    return index.promote_entry(name, description=f"rows for the {word} network test", tags=[word, "appview"])


def _search(appview_url: str, **params: str) -> list[dict]:
    resp = requests.get(f"{appview_url}{XRPC}searchDatasets", params=params, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["entries"]


def test_published_dataset_is_searchable_live(appview_sandbox: Sandbox, pds_account: SandboxAccount):
    assert os.environ["ATDATA_APPVIEW_URL"] == appview_sandbox.appview_url
    word = f"w{uuid.uuid4().hex[:10]}"
    uri = _publish(pds_account, f"live-{word}", word)
    entry = wait_until_indexed(appview_sandbox.appview_url, uri)  # via the bridge's Jetstream
    assert entry["name"] == f"live-{word}" and entry["did"] == pds_account.did
    assert entry["schemaRef"].startswith(f"at://{pds_account.did}/science.alt.dataset.schema/")
    wait_until_indexed(appview_sandbox.appview_url, entry["schemaRef"])
    hits = _search(appview_sandbox.appview_url, q=word)
    assert [h["uri"] for h in hits] == [uri]
    assert [h["uri"] for h in _search(appview_sandbox.appview_url, q=word, tags="appview")] == [uri]
    assert _search(appview_sandbox.appview_url, q=f"x{word}") == []


def _run_in_own_loop(coro: Any) -> Any:
    """``asyncio.run`` in a thread of its own: an earlier test (a widget's or a kernel's) may have left
    an event loop running in this thread, where ``asyncio.run`` refuses to start."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_jetstream_events_have_the_format_the_appview_reads(
    appview_sandbox: Sandbox, pds_account: SandboxAccount
):
    """The bridge's events, read as a Jetstream client reads them (atdata_app/ingestion/processor.py)."""
    from websockets.asyncio.client import connect

    assert appview_sandbox.network is not None
    ws_url = appview_sandbox.network.bridge_url.replace("http://", "ws://")
    word = f"j{uuid.uuid4().hex[:10]}"

    async def read_events(cursor: int | None) -> list[dict]:
        url = f"{ws_url}/subscribe?wantedCollections=science.alt.dataset.*&wantedDids={pds_account.did}"
        if cursor is not None:
            url += f"&cursor={cursor}"
        events: list[dict] = []
        async with connect(url, max_size=2**22) as ws:
            try:
                while True:
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=1.5)))
            except TimeoutError:
                return events

    uri = _publish(pds_account, f"jet-{word}", word)
    wait_until_indexed(appview_sandbox.appview_url, uri)
    events = _run_in_own_loop(read_events(None))  # no cursor: the kept events are replayed
    by_collection = {e["commit"]["collection"]: e for e in events}
    assert set(by_collection) == {f"science.alt.dataset.{c}" for c in ("schema", "entry", "label")}
    entry = by_collection["science.alt.dataset.entry"]
    assert entry["kind"] == "commit" and entry["did"] == pds_account.did and isinstance(entry["time_us"], int)
    assert entry["commit"]["operation"] == "create" and entry["commit"]["rkey"] == uri.rsplit("/", 1)[1]
    assert entry["commit"]["record"]["name"] == f"jet-{word}" and entry["commit"]["cid"].startswith("bafyrei")
    last = max(e["time_us"] for e in events)
    assert _run_in_own_loop(read_events(last)) == []  # a cursor replays only what came after it


def test_bridge_lists_repos_by_collection(appview_sandbox: Sandbox, pds_account: SandboxAccount):
    assert appview_sandbox.network is not None
    url = f"{appview_sandbox.network.bridge_url}/xrpc/com.atproto.sync.listReposByCollection"
    quiet = appview_sandbox.create_account()  # an account without any dataset record
    _publish(pds_account, f"repos-{uuid.uuid4().hex[:8]}", "repos")
    dids = []
    cursor = None
    while True:
        params = {"collection": "science.alt.dataset.entry", "limit": "2"}
        if cursor:
            params["cursor"] = cursor
        body = requests.get(url, params=params, timeout=30).json()
        dids += [r["did"] for r in body["repos"]]
        cursor = body.get("cursor")
        if not cursor:
            break
    assert pds_account.did in dids and quiet.did not in dids and dids == sorted(set(dids))
    bad = requests.get(url, params={"collection": "not an nsid"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "InvalidRequest"
    assert requests.get(f"{appview_sandbox.network.bridge_url}/elsewhere", timeout=10).status_code == 404


def test_backfill_finds_records_written_before_the_appview_started(
    sandbox: Sandbox, pds_account: SandboxAccount, tmp_path: Path, request: pytest.FixtureRequest
):
    require_appview(request)
    word = f"b{uuid.uuid4().hex[:10]}"
    uri = _publish(pds_account, f"backfill-{word}", word)  # before this network exists
    network = AppViewNetwork(
        ensure_appview_installed(progress=False), tmp_path, pds_url=sandbox.pds_url, plc_url=sandbox.plc_url
    )
    network.start()
    try:
        pids = [p.pid for p in network.processes]
        assert wait_until_indexed(network.appview_url, uri)["name"] == f"backfill-{word}"
        assert [h["uri"] for h in _search(network.appview_url, q=word)] == [uri]
    finally:
        network.stop()
    assert not any(_procs.is_alive(pid) for pid in pids)
    assert network.processes == [] and not any(Path(d).exists() for d in network.scratch_dirs)


def test_every_process_listens_on_loopback_only(appview_sandbox: Sandbox):
    procs = appview_sandbox.processes()
    assert set(procs) == {"pds", "postgres", "bridge", "appview"}
    for name, pid in procs.items():
        socks = _procs.listening_sockets(pid)
        assert socks and all(addr == "127.0.0.1" for addr, _ in socks), (name, socks)
    assert appview_sandbox.network is not None
    ports = {p.name: p.port for p in appview_sandbox.network.processes}
    assert (("127.0.0.1", ports["appview"])) in _procs.listening_sockets(procs["appview"])
    assert (("127.0.0.1", ports["postgres"])) in _procs.listening_sockets(procs["postgres"])
    assert (("127.0.0.1", ports["bridge"])) in _procs.listening_sockets(procs["bridge"])
    desc = requests.get(f"{appview_sandbox.appview_url}{XRPC}describeService", timeout=10)
    assert desc.status_code == 200
    env = appview_sandbox.env()
    assert env["ATDATA_APPVIEW_URL"] == appview_sandbox.appview_url
    assert appview_sandbox.appview_url.removeprefix("http://") in env["ATDATA_TRUSTED_HOSTS"].split(",")


@pytest.mark.slow
def test_cli_start_appview_status_and_stop_cover_every_process(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
):
    require_appview(request)
    run_dir = tmp_path / "run"
    cli = [sys.executable, "-m", "atdata_lab.cli", "sandbox"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args, "--run-dir", str(run_dir)], capture_output=True, text=True, env=env, timeout=300
        )

    started = run("start", "--quiet", "--appview", "--account", "dave.test")
    try:
        assert started.returncode == 0, started.stderr
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", started.stdout, re.M))
        appview_url = exports["ATDATA_APPVIEW_URL"]
        assert requests.get(f"{appview_url}{XRPC}describeService", timeout=10).status_code == 200
        status = run("status", "--json")
        assert status.returncode == 0, status.stdout
        info = json.loads(status.stdout)
        procs = {p["name"]: p for p in info["processes"]}
        assert set(procs) == {"pds", "postgres", "bridge", "appview"} and info["running"] is True
        assert all(p["running"] for p in procs.values())
        for p in procs.values():
            assert all(addr == "127.0.0.1" for addr, _ in _procs.listening_sockets(p["pid"])), p
        text = run("status")
        assert text.returncode == 0 and all(
            f"running: {n}" in text.stdout for n in ("postgres", "bridge", "appview")
        )
        # the AppView of a detached sandbox works like the in-process one
        account = SandboxAccount(exports["ATDATA_HANDLE"], exports["ATDATA_PASSWORD"], "")
        for key in ("ATDATA_PDS_URL", "ATDATA_TRUSTED_HOSTS"):
            monkeypatch.setenv(key, exports[key])
        wait_until_indexed(appview_url, _publish(account, "cli-network", "cliword"))
        again = run("start", "--quiet", "--appview")
        assert again.returncode == 0 and "already running" in again.stdout
        assert f"export ATDATA_APPVIEW_URL={appview_url}" in again.stdout
        # one process gone: status says which (and fails), stop still stops the others
        os.kill(procs["bridge"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _procs.is_alive(procs["bridge"]["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        broken = run("status")
        assert broken.returncode == 3 and "NOT running: bridge" in broken.stdout, broken.stdout
    finally:
        stopped = run("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert all(not _procs.is_alive(int(p["pid"])) for p in procs.values())
    scratch = info["appview"]["scratch_dirs"]
    assert not any(Path(d).exists() for d in scratch)
    assert run("status").returncode == 3


def test_appview_started_and_stopped_with_the_sandbox(tmp_path: Path, request: pytest.FixtureRequest):
    require_appview(request)
    with Sandbox(run_dir=tmp_path, progress=False, appview=True) as sb:
        procs = sb.processes()
        assert set(procs) == {"pds", "postgres", "bridge", "appview"}
        assert sb.appview_started_in is not None and sb.appview_started_in < 30
        sb.stop_appview()
        assert set(sb.processes()) == {"pds"} and "ATDATA_APPVIEW_URL" not in sb.env()
        with pytest.raises(SandboxError, match="appview=True"):
            sb.appview_url
        sb.start_appview()
        assert set(sb.processes()) == {"pds", "postgres", "bridge", "appview"}
        procs = sb.processes()
    assert not any(_procs.is_alive(pid) for pid in procs.values())


def test_no_python312_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Stand-in: this machine has Python 3.12; a machine without it is simulated by the finder."""
    from atdata_lab.sandbox import _appview_install

    monkeypatch.setenv("ATDATA_LAB_CACHE", str(tmp_path / "cache"))  # no venv installed there
    monkeypatch.setattr(_appview_install, "find_python312", lambda: None)
    with pytest.raises(SandboxError, match=r"Python 3\.12.*ATDATA_LAB_PYTHON312.*works without it"):
        ensure_appview_installed(progress=False)
    assert ensure_appview_installed(progress=False, required=False) is None
    sb = Sandbox(run_dir=tmp_path / "run", progress=False, appview=True)
    with pytest.raises(SandboxError, match=r"Python 3\.12"):
        sb.start()
    assert sb.pid is None and sb.processes() == {}  # nothing was started


@pytest.mark.slow
def test_every_process_stops_when_the_python_process_that_started_it_dies(
    tmp_path: Path, request: pytest.FixtureRequest
):
    require_appview(request)
    script = (
        "import json, time\n"
        "from atdata_lab.sandbox import Sandbox\n"
        f"sb = Sandbox(run_dir={str(tmp_path)!r}, progress=False, appview=True).start()\n"
        "print(json.dumps(sb.processes()), flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = owner.stdout.readline() if owner.stdout else ""
        procs = json.loads(line or "{}")
        assert set(procs) == {"pds", "postgres", "bridge", "appview"}, line
    finally:
        owner.kill()  # SIGKILL: no atexit, no cleanup in Python
        owner.wait()
    deadline = time.monotonic() + 20
    while any(_procs.is_alive(p) for p in procs.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [n for n, p in procs.items() if _procs.is_alive(p)] == [], (
        "outlived the Python process that started them"
    )
    sweep_stale_postgres_dirs()  # the killed owner's throw-away database folder (root: under /tmp)
