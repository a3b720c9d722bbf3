"""One Atmosphere shared by worker threads (as the widgets do) stays correct."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as rec

pytestmark = pytest.mark.sandbox


def test_concurrent_requests_from_threads(pds_account):
    client = Atmosphere.login(pds_account.handle, pds_account.password)
    made = [
        client.create_record(rec.LABEL_NSID, rec.label_record(f"n{i}", f"at://{client.did}/x.y.z/{i}"))
        for i in range(8)
    ]

    def read(i):
        got = client.get_record(rec.LABEL_NSID, made[i % 8]["uri"].rsplit("/", 1)[1])
        return got["value"]["name"]

    with ThreadPoolExecutor(4) as pool:
        names = list(pool.map(read, range(40)))
    assert names == [f"n{i % 8}" for i in range(40)]
    assert len(client.list_all_records(rec.LABEL_NSID)) == 8
