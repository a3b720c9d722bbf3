"""Pending work of this machine's processes, written down so that one killed midway leaves nothing
behind for long. The one implementation of:

* **journals**: one small JSON note per piece of pending work (shards published before their entry
  is committed, an open S3 multipart upload), a 0600 file in a 0700 folder, written atomically:
  :func:`note` when the work starts, :func:`end` when it is over, :func:`stale` to find the notes
  of work whose process died (the caller undoes that work, then removes the note);
* **staging files**: the hidden name a file is written under before it is renamed into place
  (:func:`temp_name`), and the sweep of those left by writers that died
  (:func:`clean_stale_temp_files`);
* :func:`write_private`: a file written atomically with mode 0600 (notes, saved sessions);
* :func:`pid_alive`.

Both kinds name the pid and the host of their writer: a pid means something only on its host, so
only notes and files of this host whose process is gone are ever treated as stale. This module
imports nothing from the package: every layer may use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "TEMP_MARK",
    "clean_stale_temp_files",
    "end",
    "note",
    "pid_alive",
    "read",
    "rewrite",
    "stale",
    "temp_name",
    "write_private",
]

TEMP_MARK = ".atdata-tmp-"

# notes of this process whose work is still going on (never stale, whatever the pid says)
_active: set[Path] = set()


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this machine (or exists but is not ours to signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------------------------
# staging files
# ------------------------------------------------------------------------------------------------


def _host_tag() -> str:
    """8 hex digits naming this machine in temp file names (a pid means something only on its host)."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def temp_name(final_name: str) -> str:
    """The hidden name a file is staged under before it is renamed to ``final_name``:
    ``.{final_name}.atdata-tmp-{pid}-{host}-{random}``. The pid and host let a later writer tell
    whether the process that made it is still alive (see :func:`clean_stale_temp_files`)."""
    return f".{final_name}{TEMP_MARK}{os.getpid()}-{_host_tag()}-{uuid.uuid4().hex[:8]}"


def _temp_owner(name: str) -> tuple[int, str | None] | None:
    """``(pid, host tag or None for the older pid-only names)`` of a staging file, else None."""
    if TEMP_MARK not in name:
        return None
    parts = name.rsplit(TEMP_MARK, 1)[1].split("-")
    try:
        pid = int(parts[0])
    except ValueError:
        return None
    return pid, (parts[1] if len(parts) >= 3 else None)


def clean_stale_temp_files(folder: Path, *, depth: int = 0) -> int:
    """Remove staging files left by writers on this machine that died (their pid is gone), in
    ``folder`` and, with ``depth``, that many levels of subfolders. Files of live processes and of
    other machines are left alone; symlinks are never followed. Returns how many were removed."""
    removed = 0
    me, host = os.getpid(), _host_tag()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            if depth > 0:
                removed += clean_stale_temp_files(Path(e.path), depth=depth - 1)
            continue
        owner = _temp_owner(e.name)
        if owner is None or not e.is_file(follow_symlinks=False):
            continue
        pid, tag = owner
        if (tag is not None and tag != host) or pid == me or pid_alive(pid):
            continue
        try:
            os.unlink(e.path)
            removed += 1
        except OSError:
            pass
    return removed


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``path`` atomically with mode 0600 (owner only): a staging file beside it, then a rename.

    Raises:
        OSError: It cannot be written (nothing is left behind).
    """
    tmp = path.with_name(temp_name(path.name))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)  # whatever the umask
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------------------------
# journals
# ------------------------------------------------------------------------------------------------


def note(folder: Path, info: Mapping[str, Any]) -> Path | None:
    """Write down a piece of pending work: ``info`` plus this process's ``pid`` and ``host``, as a new
    note in ``folder`` (made 0700). Returns its path, or None when it cannot be written (best effort:
    a read-only home only loses the cleanup). The work counts as going on until :func:`end`."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.json"
        write_private(path, json.dumps({**info, "pid": os.getpid(), "host": socket.gethostname()}))
    except OSError:
        return None
    _active.add(path)
    return path


def read(path: Path) -> dict[str, Any] | None:
    """A note's content, or None when it is gone or unreadable."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def rewrite(path: Path, info: Mapping[str, Any]) -> None:
    """Replace a note's content (atomically; best effort, like :func:`note`)."""
    try:
        write_private(path, json.dumps(dict(info)))
    except OSError:
        pass


def end(path: Path | None, *, done: bool) -> None:
    """The work noted at ``path`` is over in this process. ``done``: nothing is left to undo, the note
    goes; otherwise it stays, and a later :func:`stale` finds it."""
    if path is None:
        return
    _active.discard(path)
    if done:
        path.unlink(missing_ok=True)


def stale(folder: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """``(path, info)`` of each note in ``folder`` whose work nobody does any more: noted on this host
    by a process that is gone, or by this one and ended unfinished. Notes of work going on, of live
    processes and of other hosts are skipped, and so are unreadable ones. The caller removes a note
    (``path.unlink``) once it has undone the work, or :func:`rewrite` s what is left."""
    if not folder.is_dir():
        return
    me, host = os.getpid(), socket.gethostname()
    for path in folder.glob("*.json"):
        if path in _active:
            continue
        info = read(path)
        if info is None:
            continue
        pid = info.get("pid")
        if info.get("host") != host or not isinstance(pid, int) or (pid != me and pid_alive(pid)):
            continue
        yield path, info
