"""pytest fixtures for the real local PDS: ``sandbox`` (one per session) and ``pds_account``.

``sandbox`` starts :class:`atdata_lab.sandbox.Sandbox` the first time a test asks for it and
stops it when the session ends. The first run on a machine installs Node 22 and the servers into
the cache (about 2 minutes; progress is shown even under output capture).

``pds_account`` creates a fresh account with a unique ``t<random>.test`` handle for each test, so
tests never see each other's records, and sets ``ATDATA_PDS_URL``, ``ATDATA_HANDLE`` and
``ATDATA_PASSWORD`` for the test (restored afterwards).

``appview_sandbox`` is that same session sandbox with its AppView network started (PostgreSQL, the
bridge and the real atdata-app AppView; see :mod:`atdata_lab.sandbox._appview`). It is added to the
session sandbox on first use rather than run as a second sandbox: that costs ~2.5 s and ~140 MB
(measured: PostgreSQL 1.0 s, bridge 0.3 s, AppView 1.1 s) where a second sandbox would add a PDS
(~5 s, ~235 MB) too. Each test that asks for it gets it running (a test may stop it). With it,
``pds_account`` also sets ``ATDATA_APPVIEW_URL``; without it, ``ATDATA_APPVIEW_URL`` is unset.
``wait_until_indexed(appview_url, uri)`` polls the AppView's ``getEntry`` (or ``getSchema``) until
it serves the record.

Mark tests that use them with ``@pytest.mark.sandbox`` (and ``@pytest.mark.appview``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import pytest
import requests

from atdata_lab.sandbox import Sandbox, SandboxAccount, ensure_appview_installed, ensure_installed
from atdata_lab.sandbox._python312 import find_python312


@pytest.fixture(scope="session")
def sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One real PDS + PLC on 127.0.0.1 for the whole test session."""
    capman = request.config.pluginmanager.getplugin("capturemanager")
    show = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    with show:  # a cold install takes minutes: let the progress lines through
        ensure_installed(progress=True)
    sb = Sandbox(run_dir=tmp_path_factory.mktemp("sandbox"), progress=False)
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


def require_appview(request: pytest.FixtureRequest) -> None:
    """Skip (fail under CI) when this machine has no Python 3.12 for the AppView; install it once."""
    if find_python312() is None:
        why = "the AppView (atdata-app) needs Python 3.12 and none was found"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    capman = request.config.pluginmanager.getplugin("capturemanager")
    show = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    with show:  # a cold install takes ~20 s: let the progress lines through
        ensure_appview_installed(progress=True)


@pytest.fixture
def appview_sandbox(sandbox: Sandbox, request: pytest.FixtureRequest) -> Sandbox:
    """The session sandbox with its AppView network running (started on first use, restarted if a
    test stopped it)."""
    require_appview(request)
    return sandbox.start_appview()


@pytest.fixture
def pds_account(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> SandboxAccount:
    """A fresh account (unique ``t<random>.test`` handle) on the session's sandbox."""
    account = sandbox.create_account()
    env = sandbox.env(account)
    if "appview_sandbox" not in request.fixturenames:
        env.pop("ATDATA_APPVIEW_URL", None)
        monkeypatch.delenv("ATDATA_APPVIEW_URL", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return account


def wait_until_indexed(appview_url: str, uri: str, *, cid: str | None = None, timeout: float = 30.0) -> dict:
    """Poll the AppView until it serves the record ``uri`` (an entry through ``getEntry``, a schema
    through ``getSchema``), with ``cid`` when given; returns the record's view (``entry`` of getEntry). Fails the test on timeout."""
    method = "getSchema" if "/science.alt.dataset.schema/" in uri else "getEntry"
    url = f"{appview_url}/xrpc/science.alt.dataset.{method}"
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        resp = requests.get(url, params={"uri": uri}, timeout=10)
        last = (resp.status_code, resp.text[:300])
        if resp.status_code == 200:
            body = resp.json()
            body = body.get("entry", body)  # getEntry wraps the entry; getSchema answers the schema
            if body.get("uri") == uri and (cid is None or body.get("cid") == cid):
                return body
        time.sleep(0.1)
    pytest.fail(f"the AppView at {appview_url} did not serve {uri} within {timeout} s (last answer: {last})")
