"""Sessions that expire or are revoked in the middle of a promotion, on the real sandbox PDS.

Access tokens last 2 hours; the client's clock is moved 3 hours ahead to make one expire (the SDK
then refreshes it). A session is revoked the way a user does it: the app password it was created with
is revoked (``com.atproto.server.revokeAppPassword``), so the refresh fails. The plain client-level
cases are in ``tests/test_atmosphere.py`` (``test_expired_access_token_is_refreshed``,
``test_revoked_session_says_log_in_again``); here the promotion around them must write nothing
partial and complete after a new login.
"""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.errors import AuthenticationError
from atdata_lab.progress import ProgressEvent
from tests.reliability.support import counts, list_blob_cids, samples
from tests.reliability.test_promotion_crashes import check_published

pytestmark = pytest.mark.sandbox


def _app_password_client(sandbox, acct) -> tuple[Atmosphere, Atmosphere, str]:
    """(main client, client logged in with a fresh app password, the app password's name)."""
    main = Atmosphere.login(acct.handle, acct.password, pds_url=sandbox.pds_url)
    name = "notebook"
    created = main._call(
        "procedure", "com.atproto.server.createAppPassword", body={"name": name}, op="create an app password"
    )
    return main, Atmosphere.login(acct.handle, created["password"], pds_url=sandbox.pds_url), name


def _skew(client: Atmosphere, hours: int = 3) -> None:
    """Move the client's clock ahead until its tokens are next refreshed (as if 3 hours had passed).

    (Comparing tokens would not do: a refresh within the same second can return the same access JWT.)
    """
    real = client._sdk.get_current_time
    refreshed: list[bool] = []
    client._sdk.on_session_change(lambda event, session: refreshed.append(True))
    client._sdk.get_current_time = lambda: real() if refreshed else real() + timedelta(hours=hours)


@pytest.mark.parametrize("copy_to", [None, "blobs"], ids=["keep", "blobs"])
def test_access_token_expiring_mid_promotion_is_refreshed(sandbox, tmp_path, copy_to):
    acct = sandbox.create_account()
    client = Atmosphere.login(acct.handle, acct.password, pds_url=sandbox.pds_url)
    saved = client.save_session(tmp_path / "session.txt", keep_updated=True)
    before = saved.read_text()
    index = atdata.Index(
        path=tmp_path / "i.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "d")
    )
    index.write(samples(90), name="expiring", maxcount=30, progress=False)
    plan = index.plan_promotion("expiring", copy_to=copy_to)
    _skew(client)  # the access token (2 h) has expired by the time the plan runs
    client.round_trips = 0
    result = plan.execute(progress=False)
    refreshes = client.round_trips - plan.pds_calls  # requests beyond the planned ones: token refreshes
    assert refreshes == 1 and counts(client) == (1, 1, 1)
    assert saved.read_text() != before and stat.S_IMODE(saved.stat().st_mode) == 0o600  # rotated tokens saved
    cfg = {
        "db": str(tmp_path / "i.db"),
        "data": str(tmp_path / "d"),
        "name": "expiring",
        "target": copy_to or "keep",
    }
    orphans, verified = check_published(client, cfg, result.at_uri, None)
    ROWS.append(
        (
            f"access token expired before execute ({copy_to or 'keep'})",
            f"none ({refreshes} refresh)",
            "-",
            "/".join(map(str, counts(client))),
            len(orphans),
            verified,
        )
    )
    assert not orphans, orphans


WHEN = {"between blob uploads": "blobs", "just before applyWrites": None}


@pytest.mark.parametrize("when", list(WHEN))
def test_session_revoked_mid_promotion_writes_nothing_and_a_new_login_completes(sandbox, tmp_path, when):
    acct = sandbox.create_account()
    main, client, app_name = _app_password_client(sandbox, acct)
    copy_to = WHEN[when]
    work = Path(tmp_path)
    index = atdata.Index(path=work / "i.db", atmosphere=client, data_store=atdata.LocalDiskStore(work / "d"))
    index.write(samples(90), name="revoked", maxcount=30, progress=False)

    def progress(ev: ProgressEvent) -> None:
        if (when == "between blob uploads" and ev.task == "upload" and ev.done == 1) or (
            when == "just before applyWrites" and ev.task == "promote" and ev.message == "writing records"
        ):
            main._call(
                "procedure",
                "com.atproto.server.revokeAppPassword",
                body={"name": app_name},
                op="revoke the app password",
            )
            _skew(client)  # the next request must refresh the access token: the refresh is refused

    with pytest.raises(AuthenticationError) as ei:
        index.promote_entry("revoked", copy_to=copy_to, progress=progress)
    assert "log in again" in str(ei.value) and isinstance(ei.value, PermissionError)
    after_fault = counts(main)
    blobs_after_fault = list_blob_cids(main)
    assert after_fault == (0, 0, 0) and blobs_after_fault == set()  # no record, no blob kept
    assert index.get_entry_by_name("revoked").published_uri is None

    index.atmosphere = Atmosphere.login(acct.handle, acct.password, pds_url=sandbox.pds_url)  # log in again
    uri = index.promote_entry("revoked", copy_to=copy_to, progress=False)
    cfg = {"db": str(work / "i.db"), "data": str(work / "d"), "name": "revoked", "target": copy_to or "keep"}
    orphans, verified = check_published(index.atmosphere, cfg, uri, None)
    ROWS.append(
        (
            f"app password revoked {when}",
            type(ei.value).__name__,
            f"{'/'.join(map(str, after_fault))}, {len(blobs_after_fault)} blobs",
            "/".join(map(str, counts(main))),
            len(orphans),
            verified,
        )
    )
    assert counts(main) == (1, 1, 1) and not orphans, orphans


ROWS: list[tuple] = []


def test_session_matrix(report_table):
    if not ROWS:
        pytest.skip("no session test ran")
    report_table(
        "Sessions expiring or revoked mid-promotion (revoked: a new login, then the same promotion again)",
        ("case", "error", "published after the fault", "records at the end", "orphans", "shards verified"),
        ROWS,
    )
