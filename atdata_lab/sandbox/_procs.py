"""Small Linux process helpers for the sandbox: identity, listening sockets, memory, stopping.

Read from ``/proc`` directly so the sandbox needs no extra dependency.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import time
from pathlib import Path

__all__ = [
    "free_port",
    "is_alive",
    "listening_sockets",
    "rss_bytes",
    "start_time",
    "stop_process_group",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot (``/proc/PID/stat`` field 22), or None.

    Together with the pid it names one process: a recycled pid has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def is_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` in bytes (VmRSS), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except OSError:
        return inodes
    for fd in entries:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _decode_ipv4(hexaddr: str) -> str:
    return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hexaddr, 16)))


def _decode_ipv6(hexaddr: str) -> str:
    words = [struct.pack("<I", int(hexaddr[i : i + 8], 16)) for i in range(0, 32, 8)]
    return socket.inet_ntop(socket.AF_INET6, b"".join(words))


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """``(address, port)`` of every TCP socket that ``pid`` has in the LISTEN state."""
    inodes = _socket_inodes(pid)
    found: list[tuple[str, int]] = []
    for table, decode in (("/proc/net/tcp", _decode_ipv4), ("/proc/net/tcp6", _decode_ipv6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[3] != "0A":  # 0A = TCP_LISTEN
                continue
            if int(parts[9]) not in inodes:
                continue
            hexaddr, hexport = parts[1].split(":")
            found.append((decode(hexaddr), int(hexport, 16)))
    return found


def stop_process_group(
    pid: int,
    *,
    expected_start: int | None,
    timeout: float = 10.0,
    sig: int = signal.SIGTERM,
    leader_only: bool = False,
) -> bool:
    """Send ``sig`` (SIGTERM) to the process group led by ``pid``, then SIGKILL it after ``timeout`` s.

    PostgreSQL takes SIGINT to its postmaster only (``leader_only=True``: its fast shutdown, which
    stops its children itself; SIGTERM would wait for its clients to leave).

    Only acts if ``pid`` still leads its own process group (the sandbox starts its server with a
    new session) and, when ``expected_start`` is given, is still the same process (not a recycled
    pid). Returns True if something was signalled.
    """
    if not is_alive(pid):
        return False
    if expected_start is not None and start_time(pid) != expected_start:
        return False
    try:
        if os.getpgid(pid) != pid:
            return False
        if leader_only:
            os.kill(pid, sig)
        else:
            os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.05)
    return True
