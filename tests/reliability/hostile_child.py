"""A read of hostile data in a child process whose memory is capped, for the hostile-publisher suite.

``python -m tests.reliability.hostile_child SCENARIO '<json args>' --headroom-mb M`` imports
everything, caps the address space (``RLIMIT_AS``) at its size after imports plus ``M`` MiB (like the
fuzz children), optionally caps the size of files it may write (``--fsize-kb``: ``RLIMIT_FSIZE``, a
full disk as the process sees it), runs one scenario and prints one JSON line: the error raised
(class, its bases, message), the samples returned, and the peak RSS (``VmHWM``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from typing import Any

import atdata_lab as atdata
from atdata_lab import urls
from atdata_lab.atmosphere import Atmosphere
from atdata_lab.atmosphere import records as rec
from atdata_lab.urls import TRUST_OPTION, TrustPolicy


def _policy(args: dict[str, Any]) -> dict[str, Any]:
    return {TRUST_OPTION: TrustPolicy(trusted_hosts=frozenset(args.get("trusted_hosts", [])))}


def ignore_range(args: dict[str, Any]) -> dict[str, Any]:
    """A host that ignores Range: a 1 MiB ranged read 64 MiB in, then one sequential block."""
    opts = _policy(args)
    got = len(urls.read_range(args["url"], 64 << 20, 1 << 20, opts))
    with urls.open_url(args["url"], opts) as f:
        block = len(f.read(urls.REMOTE_BLOCK))
    return {"range_bytes": got, "block_bytes": block}


RETURNED: list[Any] = []  # samples a scenario got back (reported even when it then fails)


def spool_bad_shard(args: dict[str, Any]) -> dict[str, Any]:
    """A shard whose bytes do not match its checksum, served without Range support."""
    ds = atdata.Dataset(args["url"], checksums={args["url"]: args["sha256"]}, storage_options=_policy(args))
    for s in ds.ordered():
        RETURNED.append(s)
    return {}


def list_forever(args: dict[str, Any]) -> dict[str, Any]:
    client = Atmosphere(args["pds"], max_tries=1)
    client.list_all_records(rec.LABEL_NSID, repo=args["did"])
    return {}


def get_record(args: dict[str, Any]) -> dict[str, Any]:
    client = Atmosphere(args["pds"], max_tries=1)
    client.get_record(rec.ENTRY_NSID, "3kabcdefghijk", repo=args["did"])
    return {}


def fetch_shard(args: dict[str, Any]) -> dict[str, Any]:
    """A good shard downloaded into the verified cache (with --fsize-kb: onto a full disk)."""
    ds = atdata.Dataset(args["url"], checksums={args["url"]: args["sha256"]}, storage_options=_policy(args))
    RETURNED.extend(ds.ordered())
    return {}


SCENARIOS = {
    "ignore-range": ignore_range,
    "spool-bad-shard": spool_bad_shard,
    "list-forever": list_forever,
    "get-record": get_record,
    "fetch-shard": fetch_shard,
}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _vm_size() -> int:
    return _status_kb("VmSize") * 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("args")
    ap.add_argument("--headroom-mb", type=int, default=256)
    ap.add_argument("--fsize-kb", type=int, default=0)
    a = ap.parse_args()
    args = json.loads(a.args)
    import httpx  # noqa: F401 - imported before the cap, like everything the scenario uses
    import s3fs  # noqa: F401

    # warm up the HTTP client machinery (SSL contexts, codecs) before capping
    urls._http_client(TrustPolicy())
    limit = _vm_size() + (a.headroom_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if a.fsize_kb:
        resource.setrlimit(resource.RLIMIT_FSIZE, (a.fsize_kb << 10, a.fsize_kb << 10))
    out: dict[str, Any] = {"scenario": a.scenario, "address_space_cap_mb": limit >> 20}
    try:
        out.update(SCENARIOS[a.scenario](args))
        out["error"] = None
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which judges it
        out["error"] = type(e).__name__
        out["bases"] = [c.__name__ for c in type(e).__mro__]
        out["message"] = str(e)[:2000]
    out["samples_returned"] = len(RETURNED)
    out["peak_rss_mb"] = round(_status_kb("VmHWM") / 1024, 1)  # this image's peak (ru_maxrss survives exec)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
