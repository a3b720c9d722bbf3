"""Secrets: the app password and the session tokens stay out of files, logs, errors and reprs; every
server the tests and the sandbox start listens on 127.0.0.1 only.

The browser side (a notebook saved after logging in through the promotion wizard, widget state
included) is ``tests/browser/test_promotion_wizard_browser.py::
test_click_through_from_login_to_verify_and_the_password_is_nowhere``.
"""

from __future__ import annotations

import logging
import pickle
import stat
import traceback
from pathlib import Path

import pytest

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.errors import AuthenticationError, PDSUnavailableError, RecordValidationError
from tests.reliability.support import samples


def _files_holding(needles: list[str], *roots: Path) -> list[str]:
    hits = []
    raw = [n.encode() for n in needles]
    for root in roots:
        for p in Path(root).rglob("*"):
            if p.is_file() and not p.is_symlink():
                try:
                    data = p.read_bytes()
                except OSError:
                    continue
                if any(n in data for n in raw):
                    hits.append(str(p))
    return hits


def _error_texts(e: BaseException) -> list[str]:
    texts = [str(e), repr(e), repr(e.args), "".join(traceback.format_exception(type(e), e, e.__traceback__))]
    response = getattr(e, "response", None)
    if response is not None:
        texts.append(repr(response))
    return texts


@pytest.mark.sandbox
def test_app_password_and_tokens_are_nowhere(
    sandbox, tmp_path, atdata_home, caplog, capsys, monkeypatch, report_table
):
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore, the atproto SDK
    acct = sandbox.create_account()
    main = Atmosphere.login(acct.handle, acct.password, pds_url=sandbox.pds_url)
    app = main._call(
        "procedure",
        "com.atproto.server.createAppPassword",
        body={"name": "secrets-test"},
        op="create an app password",
    )["password"]
    secrets = [acct.password, app]
    texts: dict[str, list[str]] = {"errors": [], "reprs": []}

    # wrong password, a dead PDS, a refused record: errors carry no secret
    for attempt in (
        lambda: Atmosphere.login(acct.handle, "Wrong-" + app, pds_url=sandbox.pds_url),
        lambda: Atmosphere.login(acct.handle, app, pds_url="http://127.0.0.1:9"),
    ):
        with pytest.raises((AuthenticationError, PDSUnavailableError)) as ei:
            attempt()
        texts["errors"] += _error_texts(ei.value)
        secrets.append("Wrong-" + app)

    # the notebook flow: environment login, index, plan, publish as blobs, verify
    monkeypatch.setenv("ATDATA_HANDLE", acct.handle)
    monkeypatch.setenv("ATDATA_PASSWORD", app)
    monkeypatch.setenv("ATDATA_PDS_URL", sandbox.pds_url)
    client = Atmosphere.from_env()
    monkeypatch.delenv("ATDATA_PASSWORD")
    index = atdata.Index(atmosphere=client, data_store=atdata.LocalDiskStore())  # $ATDATA_HOME/index.db
    index.write(samples(60), name="secret-free", maxcount=30, progress=True)
    plan = index.plan_promotion("secret-free", copy_to="blobs", tags=["t"], license="MIT")
    result = plan.execute(progress=True)
    report = index.verify(result.at_uri)
    with pytest.raises(RecordValidationError) as ei:
        index.plan_promotion("secret-free", metadata={"x": 0.5})
    texts["errors"] += _error_texts(ei.value)
    with pytest.raises(TypeError):
        pickle.dumps(client)
    texts["reprs"] += [
        repr(client),
        str(client),
        repr(index),
        repr(plan),
        str(plan),
        repr(plan.to_dict()),
        plan._repr_html_(),
        repr(result),
        str(report),
        report._repr_html_(),
        repr(acct),
        repr(vars(client)),
        repr(vars(client._sdk)),
        repr(client._sdk._session),
    ]
    session = client._sdk._session
    tokens = [session.access_jwt, session.refresh_jwt]
    logs = [r.getMessage() + repr(r.args) + repr(r.__dict__) for r in caplog.records]
    out = capsys.readouterr()
    printed = [out.out, out.err]
    db_files = sorted(str(p) for p in Path(atdata_home).glob("index.db*"))
    on_disk = _files_holding(secrets + tokens, atdata_home, tmp_path)

    rows = [
        (
            "index DB (+ WAL) and every file under ATDATA_HOME and the test's tmp dir",
            len(list(Path(atdata_home).rglob("*"))) + len(list(tmp_path.rglob("*"))),
            len(on_disk),
        ),
        ("log records at DEBUG (all loggers)", len(logs), sum(any(s in t for s in secrets) for t in logs)),
        ("printed output (progress bars)", 2, sum(any(s in t for s in secrets) for t in printed)),
        (
            "error messages, reprs, tracebacks",
            len(texts["errors"]),
            sum(any(s in t for s in secrets) for t in texts["errors"]),
        ),
        (
            "reprs / _repr_html_ / vars of client, SDK, index, plan, result, report",
            len(texts["reprs"]),
            sum(any(s in t for s in secrets) for t in texts["reprs"]),
        ),
    ]
    report_table(
        "Secrets: where the app password (and session tokens, on disk) were looked for",
        ("where", "items searched", "items holding a secret"),
        rows,
    )
    assert db_files and not on_disk, on_disk
    canary = tmp_path / "canary" / "x.bin"  # the search itself finds a secret where there is one
    canary.parent.mkdir()
    canary.write_bytes(b"\x00" + app.encode() + b"\x00")
    assert _files_holding(secrets, tmp_path) == [str(canary)]
    for name, group in (("logs", logs), ("printed", printed), *texts.items()):
        for t in group:
            assert not any(s in t for s in secrets), f"a secret in {name}: {t[:300]}"
    assert caplog.records  # DEBUG logging was really on


@pytest.mark.sandbox
def test_session_strings_are_written_only_when_asked_and_mode_0600(
    pds_account, sandbox, tmp_path, atdata_home
):
    client = Atmosphere.login(pds_account.handle, pds_account.password, pds_url=sandbox.pds_url)
    tokens = [client._sdk._session.access_jwt, client._sdk._session.refresh_jwt]
    index = atdata.Index(atmosphere=client)
    index.write(samples(5), name="s", progress=False)
    index.promote_entry("s", progress=False)
    assert _files_holding(tokens, atdata_home, tmp_path) == []  # nothing saved unasked
    path = client.save_session(tmp_path / "private" / "session.txt")  # asked: exactly there, owner-only
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _files_holding(tokens, atdata_home, tmp_path) == [str(path)]
    assert Atmosphere.from_session(path.read_text(), pds_url=sandbox.pds_url).did == client.did


# ------------------------------------------------------------------------------------------------
# loopback only
# ------------------------------------------------------------------------------------------------


@pytest.mark.sandbox
@pytest.mark.appview
@pytest.mark.redis
@pytest.mark.s3
@pytest.mark.postgres
def test_every_server_listens_on_loopback_only(
    appview_sandbox, redis_server, postgres_server, s3_server, report_table
):
    from tests.plugins.services import listening_sockets

    rows, wrong = [], []
    network = appview_sandbox.processes()
    for name, pid in (
        ("sandbox PDS + PLC (node)", appview_sandbox.pid),
        ("sandbox AppView PostgreSQL (postgres)", network["postgres"]),
        ("sandbox bridge (python)", network["bridge"]),
        ("sandbox AppView, atdata-app (python)", network["appview"]),
        ("redis-server", redis_server.pid),
        ("PostgreSQL (postgres)", postgres_server.pid),
        ("SeaweedFS S3 (weed)", s3_server.pid),
    ):
        socks = listening_sockets(pid)
        addrs = sorted({a for a, _ in socks})
        rows.append((name, pid, len(socks), ", ".join(addrs)))
        wrong += [(name, a, p) for a, p in socks if a != "127.0.0.1"]
        assert socks, f"{name}: no listening socket found"
    report_table(
        "Listening sockets of every server the tests start",
        ("server", "pid", "sockets", "addresses"),
        rows,
        note="Sandboxes started inside tests (rate-limited, PDS-down) check the same at start "
        "(Sandbox._assert_loopback_only refuses to run otherwise).",
    )
    assert wrong == []
