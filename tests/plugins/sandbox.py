"""pytest fixtures for the real local PDS: ``sandbox`` (one per session) and ``pds_account``.

``sandbox`` starts :class:`atdata_lab.sandbox.Sandbox` the first time a test asks for it and
stops it when the session ends. The first run on a machine installs Node 22 and the servers into
the cache (about 2 minutes; progress is shown even under output capture).

``pds_account`` creates a fresh account with a unique ``t<random>.test`` handle for each test, so
tests never see each other's records, and sets ``ATDATA_PDS_URL``, ``ATDATA_HANDLE`` and
``ATDATA_PASSWORD`` for the test (restored afterwards).

Mark tests that use them with ``@pytest.mark.sandbox``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from atdata_lab.sandbox import Sandbox, SandboxAccount, ensure_installed


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


@pytest.fixture
def pds_account(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> SandboxAccount:
    """A fresh account (unique ``t<random>.test`` handle) on the session's sandbox."""
    account = sandbox.create_account()
    for key, value in sandbox.env(account).items():
        monkeypatch.setenv(key, value)
    return account
