"""Rate limits on a real PDS with ``PDS_RATE_LIMITS_ENABLED=true``.

The PDS's limits are fixed in its code (30 logins / 5 min per handle; 5000 write points / hour per
account, create = 3): the sandbox turns them on with ``Sandbox(pds_env=...)`` and the tests reach
them quickly (9 applyWrites of 200 creates = 5400 points). No fault is injected here: every 429 comes
from the PDS itself. (A 429 with a short ``retry-after``, which the PDS cannot be made to send on
demand, is covered with injected answers in ``tests/test_atmosphere.py``.)
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

import atdata_lab as atdata
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.errors import RateLimitedError
from atdata_lab.sandbox import Sandbox
from tests.reliability.support import counts, samples

pytestmark = pytest.mark.sandbox

FILLER = "org.example.filler"


@pytest.fixture(scope="module")
def limited_sandbox(tmp_path_factory: pytest.TempPathFactory):
    """A second sandbox PDS with the PDS's rate limits on (the session one has them off)."""
    sb = Sandbox(
        run_dir=tmp_path_factory.mktemp("rate-limited-sandbox"),
        progress=False,
        pds_env={"PDS_RATE_LIMITS_ENABLED": "true"},
    )
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


def _login_headers(pds_url: str, handle: str, password: str) -> dict[str, str]:
    r = httpx.post(
        f"{pds_url}/xrpc/com.atproto.server.createSession",
        json={"identifier": handle, "password": password},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("ratelimit")}


def test_sandbox_pds_env_turns_on_the_pds_rate_limits(limited_sandbox: Sandbox, sandbox: Sandbox):
    acct = limited_sandbox.create_account()
    limited = _login_headers(limited_sandbox.pds_url, acct.handle, acct.password)
    assert limited["ratelimit-limit"] == "30" and limited["ratelimit-policy"] == "30;w=300", limited
    other = sandbox.create_account()
    assert _login_headers(sandbox.pds_url, other.handle, other.password) == {}  # off by default
    assert any(
        '"applied":["rateLimitsEnabled"]' in line
        for line in limited_sandbox.log_path.read_text().splitlines()
    )


def _exhaust_write_points(client: Atmosphere) -> tuple[int, RateLimitedError]:
    """applyWrites of 200 creates (600 points) until the PDS answers 429; returns (calls, error)."""
    for call in range(1, 20):
        try:
            client.apply_writes(
                [{"action": "create", "collection": FILLER, "value": {"i": i}} for i in range(200)]
            )
        except RateLimitedError as e:
            return call, e
    raise AssertionError("the PDS never rate-limited 20 x 200 creates")


def test_write_limit_gives_rate_limited_error_with_reset_time_and_writes_nothing(
    limited_sandbox: Sandbox, tmp_path, report_table
):
    acct = limited_sandbox.create_account()
    client = Atmosphere.login(acct.handle, acct.password, pds_url=limited_sandbox.pds_url, max_wait=30)
    index = atdata.Index(
        path=tmp_path / "i.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "d")
    )
    index.write(samples(40), name="limited", maxcount=20, progress=False)
    plan = index.plan_promotion("limited")

    calls, first = _exhaust_write_points(client)
    assert calls == 9  # 8 x 600 = 4800 points accepted, the 9th batch would pass 5000

    client.round_trips = 0
    t0 = time.monotonic()
    with pytest.raises(RateLimitedError) as ei:
        plan.execute(progress=False)
    elapsed = time.monotonic() - t0
    requests_sent = client.round_trips
    e = ei.value
    header_reset = datetime.fromtimestamp(int(e.response.headers["ratelimit-reset"]), tz=UTC)
    now = datetime.now(UTC)
    assert e.status == 429 and e.reset_at == header_reset
    assert now + timedelta(minutes=55) < e.reset_at <= now + timedelta(hours=1, seconds=5)
    assert e.reset_at.isoformat(timespec="seconds") in str(e) and "retry budget" in str(e)
    # bounded: the reset lies beyond max_wait, so no sleeping and no retries
    assert elapsed < 2.0 and requests_sent == 1
    # the wizard's error panel tells when to retry (its advice text is built from reset_at)
    from atdata_lab.views import error_advice

    assert str(e.reset_at) in error_advice(e)
    # nothing half-written: no dataset record, the local entry is not marked published
    assert counts(client) == (0, 0, 0)
    assert index.get_entry_by_name("limited").published_uri is None
    report_table(
        "Rate limit (writes): PDS_RATE_LIMITS_ENABLED=true, 5000 points/hour",
        ("what", "result"),
        [
            ("applyWrites of 200 creates accepted before 429", calls - 1),
            ("error", type(e).__name__),
            ("reset_at (from ratelimit-reset)", e.reset_at.isoformat(timespec="seconds")),
            ("time to fail (max_wait=30 s)", f"{elapsed:.2f} s"),
            ("PDS requests by execute()", requests_sent),
            ("schema/entry/label records after", "/".join(map(str, counts(client)))),
        ],
    )


def test_login_limit_gives_rate_limited_error_at_once(limited_sandbox: Sandbox, report_table):
    acct = limited_sandbox.create_account()

    def login(_: int) -> str:
        try:
            Atmosphere.login(acct.handle, acct.password, pds_url=limited_sandbox.pds_url).close()
            return "ok"
        except RateLimitedError:
            return "429"

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(login, range(30)))
    assert results.count("ok") == 30
    t0 = time.monotonic()
    with pytest.raises(RateLimitedError) as ei:
        Atmosphere.login(acct.handle, acct.password, pds_url=limited_sandbox.pds_url, max_wait=30)
    elapsed = time.monotonic() - t0
    e = ei.value
    now = datetime.now(UTC)
    assert e.status == 429 and now < e.reset_at <= now + timedelta(minutes=5, seconds=5)
    assert elapsed < 2.0 and "log in" in str(e) and acct.password not in str(e) + repr(e)
    report_table(
        "Rate limit (logins): 30 per 5 minutes per handle",
        ("what", "result"),
        [
            ("logins accepted", results.count("ok")),
            ("31st login", type(e).__name__),
            ("reset_at", e.reset_at.isoformat(timespec="seconds")),
            ("time to fail (max_wait=30 s)", f"{elapsed:.2f} s"),
        ],
    )
