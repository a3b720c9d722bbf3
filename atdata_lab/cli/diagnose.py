"""``atdata-lab diagnose``: which index, data store, S3 endpoint, PDS, account and PLC directory
are configured (from ``--index`` and the ``ATDATA_*``/``AWS_*`` variables the library reads),
whether each is reachable (with a short timeout), and the trust policy.

Exit code 1 when something configured cannot be reached or used, else 0. Secrets (passwords,
tokens, the password of a URL) are never printed: only whether they are set.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from ._common import EXIT_FAILURE, UsageError, add_index_option, emit, index_spec, open_index, redact

__all__ = ["Check", "register"]

OK, FAIL, WARN, NONE = "ok", "FAIL", "warn", "-"


@dataclass(frozen=True)
class Check:
    """One line of the report: ``what`` is ``status`` (ok, FAIL, warn, -); ``text`` says what is
    configured and what was found."""

    what: str
    status: str
    text: str


def register(sub: Any) -> None:
    """Add ``diagnose`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "diagnose",
        help="which index, data store, PDS and account are configured, and whether they are reachable",
        description="Report the configuration (--index, ATDATA_HOME, ATDATA_PDS_URL, ATDATA_HANDLE, "
        "ATDATA_PASSWORD, ATDATA_PLC_URL, AWS_ENDPOINT_URL, the trust variables) and check that "
        "each configured part answers. Exit code 1 if one does not. Secrets are never printed.",
    )
    add_index_option(p)
    p.add_argument("--timeout", type=float, default=3.0, help="seconds per check (default 3)")
    p.add_argument("--no-login", action="store_true", help="do not log in to check the account")
    p.set_defaults(func=_cmd_diagnose)


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from atdata_lab.views.text import kv_text, text_table

    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout}: give a number of seconds above 0")
    t = args.timeout
    pds = _check_pds(t)
    checks = [
        _check_index(args.index, t),
        _check_store(),
        _check_s3(t),
        pds,
        _check_account(t, pds, login=not args.no_login),
        _check_plc(t),
        _check_sandbox(),
    ]
    table = text_table(
        ["what", "status", "configured and found"], [(c.what, c.status, c.text) for c in checks]
    )
    failed = [c.what for c in checks if c.status == FAIL]
    emit(
        f"{table}\n\n"
        "Trust policy for other people's records (ATDATA_TRUSTED_HOSTS, ATDATA_TRUSTED_DIDS,\n"
        "ATDATA_ALLOW_LOCAL_URLS, ATDATA_S3_CREDENTIAL_ENDPOINTS):\n"
        + kv_text(_trust_rows(), indent="  ")
        + (f"\n\nnot reachable or not usable: {', '.join(failed)}" if failed else "")
    )
    return EXIT_FAILURE if failed else 0


def _error_text(e: BaseException) -> str:
    return redact(" ".join(str(e).split()) or type(e).__name__)


def _ms(start: float) -> str:
    return f"{(time.monotonic() - start) * 1000:.0f} ms"


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------
def _check_index(index_arg: str | None, timeout: float) -> Check:
    spec = index_spec(index_arg)
    where = f"{spec.kind} {spec.where} ({spec.source})"
    if not spec.exists:
        if spec.source == "--index":
            return Check("index", FAIL, f"{where}: no such file")
        return Check("index", NONE, f"{where}: not created yet (the first write creates it)")
    start = time.monotonic()
    try:
        index = open_index(spec, timeout=timeout)
        n, k = len(index), len(index.list_schemas())
        found = f"{n:,} dataset{'' if n == 1 else 's'}, {k:,} schema{'' if k == 1 else 's'}"
    except Exception as e:  # noqa: BLE001 - any failure to open the index is what this check reports
        return Check("index", FAIL, f"{where}: {_error_text(e)}")
    return Check("index", OK, f"{where}: {found} ({_ms(start)})")


def _check_store() -> Check:
    from atdata_lab.stores.local import LocalDiskStore

    root = LocalDiskStore().root
    where = f"local disk {root} (new shards of the default index)"
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        return Check("data store", FAIL, f"{where}: {probe} is not writable")
    if not root.exists():
        return Check("data store", NONE, f"{where}: not created yet (the first write creates it)")
    return Check("data store", OK, f"{where}: writable")


def _tcp(url: str, timeout: float, default_port: int) -> str | None:
    """None when a TCP connection to ``url``'s host and port opens within ``timeout``, else why not."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else default_port)
    except ValueError as e:
        return f"not a URL ({e})"
    if not host:
        return "not a URL with a host"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as e:
        return f"cannot connect to {host}:{port} ({e.strerror or e})"


def _check_s3(timeout: float) -> Check:
    from atdata_lab.views.text import masked_url

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    creds = (
        "set"
        if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")
        else "not set"
    )
    if not endpoint:
        return Check(
            "S3",
            NONE,
            f"AWS_ENDPOINT_URL not set (AWS itself, or S3DataStore(endpoint_url=...)); credentials {creds}",
        )
    where = f"{masked_url(endpoint)} (AWS_ENDPOINT_URL), credentials {creds}"
    start = time.monotonic()
    why = _tcp(endpoint, timeout, 80)
    return (
        Check("S3", FAIL, f"{where}: {why}") if why else Check("S3", OK, f"{where}: reachable ({_ms(start)})")
    )


def _check_pds(timeout: float) -> Check:
    url = os.environ.get("ATDATA_PDS_URL")
    if not url:
        return Check(
            "PDS",
            NONE,
            "ATDATA_PDS_URL not set (needed to read published datasets; the sandbox prints it: "
            "atdata-lab sandbox start)",
        )
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.views.text import masked_url

    where = f"{masked_url(url)} (ATDATA_PDS_URL)"
    start = time.monotonic()
    atm = None
    try:
        atm = Atmosphere(url, timeout=timeout, max_tries=1)
        info = atm.describe_server()
    except Exception as e:  # noqa: BLE001 - any failure to reach the PDS is what this check reports
        return Check("PDS", FAIL, f"{where}: {_error_text(e)}")
    finally:
        if atm is not None:
            atm.close()
    did = info.get("did") if isinstance(info.get("did"), str) else "?"
    return Check("PDS", OK, f"{where}: reachable, server {did} ({_ms(start)})")


def _check_account(timeout: float, pds: Check, *, login: bool) -> Check:
    handle = os.environ.get("ATDATA_HANDLE")
    has_password = bool(os.environ.get("ATDATA_PASSWORD"))
    if not handle:
        extra = " (ATDATA_PASSWORD is set)" if has_password else ""
        return Check(
            "account", NONE, f"ATDATA_HANDLE not set{extra} (needed to promote: Atmosphere.from_env())"
        )
    from atdata_lab.views.text import plain

    where = f"{plain(handle, 100)} (ATDATA_HANDLE), password " + (
        "set (hidden)" if has_password else "not set"
    )
    if not has_password:
        return Check("account", WARN, f"{where}: set ATDATA_PASSWORD (an app password) to log in")
    if not login:
        return Check("account", NONE, f"{where}: login not checked (--no-login)")
    if pds.status == FAIL:
        return Check("account", NONE, f"{where}: not checked (the PDS is not reachable)")
    from atdata_lab.atmosphere import Atmosphere

    start = time.monotonic()
    try:
        atm = Atmosphere.from_env(timeout=timeout, max_tries=1)
    except Exception as e:  # noqa: BLE001 - any failure to log in is what this check reports
        return Check("account", FAIL, f"{where}: {_error_text(e)}")
    try:
        return Check("account", OK, f"{where}: logged in as {atm.did} on {atm.pds_url} ({_ms(start)})")
    finally:
        atm.close()


def _check_plc(timeout: float) -> Check:
    from atdata_lab.views.text import masked_url

    url = os.environ.get("ATDATA_PLC_URL")
    if not url:
        return Check("PLC", NONE, "https://plc.directory (default; ATDATA_PLC_URL not set): not checked")
    where = f"{masked_url(url)} (ATDATA_PLC_URL)"
    start = time.monotonic()
    why = _tcp(url, timeout, 80)
    return (
        Check("PLC", FAIL, f"{where}: {why}")
        if why
        else Check("PLC", OK, f"{where}: reachable ({_ms(start)})")
    )


def _check_sandbox() -> Check:
    from atdata_lab.sandbox import default_run_dir

    from .sandbox import sandbox_state

    state = sandbox_state()
    if state is None:
        return Check("sandbox", NONE, f"not running from {default_run_dir()} (atdata-lab sandbox start)")
    return Check("sandbox", OK, f"running: PDS at {state.get('pds_url')} (pid {state.get('pid')})")


def _trust_rows() -> list[tuple[str, str]]:
    from atdata_lab.urls import TrustPolicy

    policy = TrustPolicy.from_env()

    def listed(values: frozenset[str]) -> str:
        return ", ".join(sorted(values)) or "none"

    return [
        ("trusted hosts", listed(policy.trusted_hosts)),
        ("trusted publishers", listed(policy.trusted_dids)),
        ("local files and internal addresses", "allowed" if policy.allow_local else "refused"),
        ("S3 credential endpoints", listed(policy.credential_endpoints)),
    ]
