"""Logging: one pluggable logger for the library (atdata 0.7's ``configure_logging``/``get_logger``).

By default messages go to the standard library's ``logging.getLogger("atdata_lab")`` (and its
children, e.g. ``atdata_lab.atmosphere``). ``configure_logging(logger)`` sends them to any object
with ``debug``/``info``/``warning``/``error`` methods instead (a structlog logger, your own
``logging.Logger``). Progress bars are separate: see :mod:`atdata_lab.progress`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from .errors import InvalidTypeError

__all__ = ["LoggerProtocol", "configure_logging", "get_logger", "log_operation", "logger"]


@runtime_checkable
class LoggerProtocol(Protocol):
    """What a pluggable logger needs."""

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None: ...


_configured: LoggerProtocol | None = None


def configure_logging(logger: LoggerProtocol | None) -> None:
    """Send the library's log messages to ``logger`` (``None``: back to the standard library's).

    Raises:
        TypeError: ``logger`` lacks one of ``debug``, ``info``, ``warning``, ``error``.
    """
    global _configured
    if logger is not None and not isinstance(logger, LoggerProtocol):
        raise InvalidTypeError(
            f"configure_logging needs a logger with debug/info/warning/error methods, not {logger!r:.100}"
        )
    _configured = logger


def get_logger() -> LoggerProtocol:
    """The logger in use: the one given to :func:`configure_logging`, else ``logging.getLogger("atdata_lab")``."""
    return _configured if _configured is not None else logging.getLogger("atdata_lab")


class _Routed:
    """A module's logger: the standard library's ``name`` logger, or the configured one."""

    def __init__(self, name: str) -> None:
        self._std = logging.getLogger(name)

    def _target(self) -> Any:
        return _configured if _configured is not None else self._std

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._target().debug(msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._target().info(msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._target().warning(msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._target().error(msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        target = self._target()
        report = getattr(target, "exception", None)
        if callable(report):
            report(msg, *args, **kwargs)
        else:
            target.error(msg, *args, exc_info=True, **kwargs)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - the stdlib's name
        target = self._target()
        check = getattr(target, "isEnabledFor", None)
        return bool(check(level)) if callable(check) else True


def logger(name: str) -> _Routed:
    """The logger a module of this library uses (``name`` under ``atdata_lab``)."""
    return _Routed(name)


@contextlib.contextmanager
def log_operation(op_name: str, **context: Any) -> Iterator[None]:
    """Log that ``op_name`` started, and that it completed (with its duration) or failed.

    ``context`` (key=value pairs) is added to each message.
    """
    log = get_logger()
    ctx = ", ".join(f"{k}={v}" for k, v in context.items())
    suffix = f" ({ctx})" if ctx else ""
    log.info("%s: started%s", op_name, suffix)
    t0 = time.monotonic()
    try:
        yield
    except BaseException:
        log.error("%s: failed after %.2fs%s", op_name, time.monotonic() - t0, suffix)
        raise
    log.info("%s: completed in %.2fs%s", op_name, time.monotonic() - t0, suffix)
