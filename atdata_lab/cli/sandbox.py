"""``atdata-lab sandbox``: the local reference PDS.

``atdata-lab sandbox start [--data-dir D] [--account alice.test] [--appview]``
    Start the local sandbox PDS in the background and print shell ``export`` lines
    (``eval "$(atdata-lab sandbox start --account alice.test)"`` sets them). ``--appview`` also
    starts PostgreSQL, the relay bridge and the real AppView (atdata-app, Python 3.12) and exports
    ``ATDATA_APPVIEW_URL``.
``atdata-lab sandbox status``
    Say whether it runs, where, and the memory of each process. Exit code 0 if every process
    runs, 3 if not.
``atdata-lab sandbox stop``
    Stop every process (SIGTERM, SIGINT for PostgreSQL, then SIGKILL after ``--timeout`` seconds).

State lives in ``--run-dir`` (default ``${ATDATA_LAB_CACHE:-~/.cache/atdata-lab}/sandbox/run``,
or ``$ATDATA_LAB_SANDBOX_RUN_DIR``): ``state.json`` with the pid and URLs, and ``server.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["EXIT_NOT_RUNNING", "register", "sandbox_state"]

_STATE = "state.json"
EXIT_NOT_RUNNING = 3


def _read_state(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / _STATE).read_text())
    except (OSError, ValueError):
        return None


def _state_alive(state: dict[str, Any] | None) -> bool:
    from atdata_lab.sandbox import _procs

    if not state:
        return False
    pid = int(state.get("pid", 0))
    return bool(pid) and _procs.is_alive(pid) and _procs.start_time(pid) == state.get("start_time")


def _network_processes(state: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(((state or {}).get("appview") or {}).get("processes") or [])


def _exports(pds_url: str, account: Any = None, appview_url: str | None = None) -> list[str]:
    from atdata_lab.sandbox._core import trusted_hosts_with

    trusted = trusted_hosts_with(pds_url)
    if appview_url:
        trusted = trusted_hosts_with(appview_url, trusted)
    lines = [
        f"export ATDATA_PDS_URL={shlex.quote(pds_url)}",
        f"export ATDATA_TRUSTED_HOSTS={shlex.quote(trusted)}",
    ]
    if appview_url:
        lines.append(f"export ATDATA_APPVIEW_URL={shlex.quote(appview_url)}")
    if account is not None:
        lines.append(f"export ATDATA_HANDLE={shlex.quote(account.handle)}")
        lines.append(f"export ATDATA_PASSWORD={shlex.quote(account.password)}")
    return lines


def _cmd_start(args: argparse.Namespace) -> int:
    from atdata_lab.errors import SandboxError
    from atdata_lab.sandbox import Sandbox

    run_dir: Path = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir).expanduser().resolve() if args.data_dir else None
    state = _read_state(run_dir)
    if _state_alive(state):
        assert state is not None
        if args.appview and not _network_processes(state):
            print(
                f"error: a sandbox without the AppView already runs from {run_dir}: stop it first "
                "(atdata-lab sandbox stop), then start it with --appview",
                file=sys.stderr,
            )
            return 1
        if (state.get("data_dir") or None) != (str(data_dir) if data_dir else None):
            print(
                f"error: a sandbox already runs from {run_dir} with data dir {state.get('data_dir')}: "
                "stop it first (atdata-lab sandbox stop) or pass another --run-dir",
                file=sys.stderr,
            )
            return 1
        sb = Sandbox(data_dir=data_dir, run_dir=run_dir)
        sb.pds_port = state["pds_port"]
        sb.plc_port = state["plc_port"]
        sb._network_state = state.get("appview") or None
        print(f"# atdata-lab sandbox: already running, PDS at {sb.pds_url} (pid {state['pid']})")
    else:
        sb = Sandbox(
            data_dir=data_dir,
            run_dir=run_dir,
            pds_port=args.pds_port,
            progress=not args.quiet,
            appview=args.appview,
        )
        try:
            sb.start(detach=True)
        except SandboxError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        state = {**sb.state(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        tmp = run_dir / f".{_STATE}.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, run_dir / _STATE)
        print(f"# atdata-lab sandbox: PDS at {sb.pds_url} (pid {sb.pid}, log {sb.log_path})")
        for proc in _network_processes(state):
            print(f"# {proc['name']} on 127.0.0.1:{proc['port']} (pid {proc['pid']}, log {proc['log']})")
        if args.appview:
            print(f"# AppView at {sb.appview_url} (started in {sb.appview_started_in or 0:.1f} s)")
    account = None
    if args.account:
        account = sb.create_account(args.account)
        print(f"# account {account.handle} ({account.did})")
    # The password is printed only here, because the user asked for the account.
    appview_url = ((state or {}).get("appview") or {}).get("appview_url")
    for line in _exports(sb.pds_url, account, appview_url):
        print(line)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from atdata_lab.sandbox import _procs

    state = _read_state(args.run_dir)
    alive = _state_alive(state)
    network = _network_processes(state) if alive else []
    procs_alive = {
        p["name"]: _procs.is_alive(int(p["pid"])) and _procs.start_time(int(p["pid"])) == p.get("start_time")
        for p in network
    }
    all_alive = alive and all(procs_alive.values())
    if args.json:
        info: dict[str, Any] = {"running": all_alive, **(state or {})}
        if alive and state:
            info["rss_bytes"] = _procs.rss_bytes(int(state["pid"]))
            info["processes"] = [
                {"name": "pds", "pid": state["pid"], "running": True, "rss_bytes": info["rss_bytes"]},
                *(
                    {
                        "name": p["name"],
                        "pid": p["pid"],
                        "port": p["port"],
                        "running": procs_alive[p["name"]],
                        "rss_bytes": _procs.rss_bytes(int(p["pid"])) if procs_alive[p["name"]] else None,
                        "log": p["log"],
                    }
                    for p in network
                ),
            ]
        print(json.dumps(info, indent=2))
    elif alive and state:
        rss = _procs.rss_bytes(int(state["pid"])) or 0
        print(f"running: PDS at {state['pds_url']} (pid {state['pid']}, {rss / 2**20:.0f} MB RSS)")
        for p in network:
            if procs_alive[p["name"]]:
                prss = _procs.rss_bytes(int(p["pid"])) or 0
                print(
                    f"running: {p['name']} on 127.0.0.1:{p['port']} (pid {p['pid']}, {prss / 2**20:.0f} MB RSS)"
                )
            else:
                print(f"NOT running: {p['name']} (pid {p['pid']} is gone; see {p['log']})")
        print(f"data dir: {state.get('data_dir') or '(throw-away)'}; log: {state.get('log')}")
        print(f"export ATDATA_PDS_URL={shlex.quote(state['pds_url'])}")
        appview_url = (state.get("appview") or {}).get("appview_url")
        if appview_url:
            print(f"export ATDATA_APPVIEW_URL={shlex.quote(appview_url)}")
    else:
        print(f"not running (state in {args.run_dir})")
    return 0 if all_alive else EXIT_NOT_RUNNING


def _cmd_stop(args: argparse.Namespace) -> int:
    from atdata_lab.sandbox import _procs

    run_dir: Path = args.run_dir
    state = _read_state(run_dir)
    if state is None:
        print(f"not running (no state in {run_dir})")
        return 0
    from atdata_lab.sandbox._appview import stop_processes

    for name in stop_processes(_network_processes(state), timeout=args.timeout):
        print(f"stopped the sandbox {name}")
    for d in (state.get("appview") or {}).get("scratch_dirs") or []:
        shutil.rmtree(d, ignore_errors=True)
    if _state_alive(state):
        _procs.stop_process_group(
            int(state["pid"]), expected_start=state.get("start_time"), timeout=args.timeout
        )
        print(f"stopped the sandbox (pid {state['pid']})")
    else:
        print("not running (removed stale state)")
    if state.get("scratch_dir"):
        shutil.rmtree(state["scratch_dir"], ignore_errors=True)
    for path in (run_dir / _STATE, Path(state["pid_file"]) if state.get("pid_file") else None):
        if path is not None:
            try:
                path.unlink()
            except OSError:
                pass
    return 0


def sandbox_state(run_dir: Path | None = None) -> dict[str, Any] | None:
    """The state of the sandbox ``atdata-lab sandbox start`` runs from ``run_dir`` (default: the
    default run dir), or None when it is not running."""
    from atdata_lab.sandbox import default_run_dir

    state = _read_state(run_dir if run_dir is not None else default_run_dir())
    return state if _state_alive(state) else None


def register(sub: Any) -> None:
    """Add ``sandbox start|status|stop`` to the subcommands ``sub``."""
    from atdata_lab.sandbox import default_run_dir

    sandbox = sub.add_parser("sandbox", help="run a local reference PDS (127.0.0.1, handles *.test)")
    sb_sub = sandbox.add_subparsers(dest="action", required=True)

    def add_run_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--run-dir",
            type=lambda s: Path(s).expanduser().resolve(),
            default=default_run_dir(),
            help="folder with state.json and server.log (default: %(default)s)",
        )

    start = sb_sub.add_parser("start", help="start in the background and print export lines")
    start.add_argument("--data-dir", help="keep accounts and records here across restarts")
    start.add_argument("--account", metavar="HANDLE", help="also create this account (e.g. alice.test)")
    start.add_argument("--pds-port", type=int, default=None, help="PDS port (default: a free one)")
    start.add_argument("--quiet", action="store_true", help="print no install progress")
    start.add_argument(
        "--appview",
        action="store_true",
        help="also run PostgreSQL, the relay bridge and the real AppView (atdata-app; needs Python 3.12)",
    )
    add_run_dir(start)
    start.set_defaults(func=_cmd_start)

    status = sb_sub.add_parser("status", help="is it running? exit 0 if so, 3 if not")
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    add_run_dir(status)
    status.set_defaults(func=_cmd_status)

    stop = sb_sub.add_parser("stop", help="stop it")
    stop.add_argument("--timeout", type=float, default=10.0, help="seconds before SIGKILL (default 10)")
    add_run_dir(stop)
    stop.set_defaults(func=_cmd_stop)
