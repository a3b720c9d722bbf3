"""One small progress protocol that tqdm and the widgets both subscribe to.

Slow work (writing shards, copying, promoting) calls ``progress(event)`` with a
:class:`ProgressEvent`. Anything callable with one argument can subscribe: a
function, :class:`TqdmProgress`, or a widget's handler.

Functions that accept ``progress=`` take:

* ``True`` (default): a tqdm bar (``tqdm.auto``: a notebook bar in Jupyter);
* ``False`` / ``None``: silent;
* any callable ``(ProgressEvent) -> None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, Union

from .errors import InvalidTypeError

__all__ = ["ProgressEvent", "ProgressCallback", "TqdmProgress", "resolve_progress", "ProgressLike"]


@dataclass(frozen=True)
class ProgressEvent:
    """One report of progress.

    Attributes:
        task: What is being done, e.g. ``"write"``, ``"copy"``, ``"promote"``.
        done: Units completed so far in this task.
        total: Units expected in all, or ``None`` when unknown.
        unit: ``"samples"``, ``"bytes"``, ``"shards"``, ``"steps"``.
        message: Optional human-readable detail (current shard, step name).
        finished: True on the last event of the task.
    """

    task: str
    done: int
    total: int | None = None
    unit: str = "items"
    message: str = ""
    finished: bool = False


class ProgressCallback(Protocol):
    """Anything called with one :class:`ProgressEvent`."""

    def __call__(self, event: ProgressEvent) -> None: ...


ProgressLike = Union[bool, None, ProgressCallback, Callable[[ProgressEvent], Any]]


class TqdmProgress:
    """Render progress events as tqdm bars (one bar per task, closed on ``finished``)."""

    def __init__(self, **tqdm_kwargs: Any) -> None:
        self._kwargs = tqdm_kwargs
        self._bars: dict[str, Any] = {}

    def __call__(self, event: ProgressEvent) -> None:
        bar = self._bars.get(event.task)
        if bar is None:
            from tqdm.auto import tqdm

            scale = event.unit == "bytes"
            bar = tqdm(
                total=event.total,
                desc=event.task,
                unit="B" if scale else event.unit,
                unit_scale=scale,
                leave=False,
                **self._kwargs,
            )
            self._bars[event.task] = bar
        if event.total is not None and bar.total != event.total:
            bar.total = event.total
        bar.update(event.done - bar.n)
        if event.message:
            bar.set_postfix_str(event.message, refresh=False)
        if event.finished:
            bar.close()
            del self._bars[event.task]


def _silent(event: ProgressEvent) -> None:
    return None


def resolve_progress(progress: ProgressLike) -> Callable[[ProgressEvent], Any]:
    """Turn a ``progress=`` argument into a callable."""
    if progress is True:
        return TqdmProgress()
    if progress is False or progress is None:
        return _silent
    if callable(progress):
        return progress
    raise InvalidTypeError(f"progress= takes True, False, None or a callable, not {type(progress).__name__}")
