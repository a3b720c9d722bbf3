"""atdata_lab._journal: notes of pending work, found stale only once their process is gone."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

from atdata_lab import _journal


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_note_is_private_and_stale_only_once_ended_unfinished(tmp_path):
    folder = tmp_path / "pending"
    path = _journal.note(folder, {"what": "x"})
    assert path is not None and _mode(folder) == 0o700 and _mode(path) == 0o600
    assert json.loads(path.read_text()) == {"what": "x", "pid": os.getpid(), "host": socket.gethostname()}
    assert list(_journal.stale(folder)) == []  # going on
    _journal.end(path, done=False)
    assert list(_journal.stale(folder)) == [(path, _journal.read(path))]  # ended with work left over
    _journal.rewrite(path, {**_journal.read(path), "what": "y"})
    assert _journal.read(path)["what"] == "y" and _mode(path) == 0o600
    _journal.end(path, done=True)
    assert not path.exists() and list(folder.iterdir()) == []  # no staging file left either


def test_stale_skips_live_processes_other_hosts_and_unreadable_notes(tmp_path):
    folder = tmp_path / "pending"
    folder.mkdir()
    host = socket.gethostname()
    notes = {
        "dead": {"pid": _dead_pid(), "host": host},
        "live": {"pid": os.getppid(), "host": host},
        "elsewhere": {"pid": _dead_pid(), "host": host + "-other"},
        "nopid": {"host": host},
    }
    for name, info in notes.items():
        (folder / f"{name}.json").write_text(json.dumps(info))
    (folder / "broken.json").write_text("{")
    (folder / "list.json").write_text("[]")
    assert [p.name for p, _ in _journal.stale(folder)] == ["dead.json"]
    assert list(_journal.stale(tmp_path / "missing")) == []


def test_an_unwritable_folder_loses_only_the_note(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert _journal.note(blocker / "pending", {"what": "x"}) is None
    _journal.end(None, done=True)  # a note never written ends quietly


def test_pid_alive():
    assert _journal.pid_alive(os.getpid())
    assert not _journal.pid_alive(_dead_pid())
