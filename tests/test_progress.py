"""One progress protocol: callables receive ProgressEvents; tqdm is the default renderer."""

from __future__ import annotations

import pytest

import atdata_lab as atdata
from atdata_lab.progress import ProgressEvent, TqdmProgress, resolve_progress
from tests.conformance.index_suite import experiment


def test_write_reports_samples_with_total_and_finish():
    events: list[ProgressEvent] = []
    atdata.Index().write(experiment(1200), name="p", maxcount=500, progress=events.append)
    assert events[-1].finished and events[-1].done == 1200 and events[-1].total == 1200
    assert all(e.task == "write" and e.unit == "samples" for e in events)
    assert [e.done for e in events] == sorted(e.done for e in events)


def test_resolution_rules(capsys):
    assert isinstance(resolve_progress(True), TqdmProgress)
    silent = resolve_progress(False)
    assert silent(ProgressEvent("x", 1)) is None and resolve_progress(None) is silent
    with pytest.raises(TypeError, match="callable"):
        resolve_progress("yes")


def test_tqdm_renderer_opens_and_closes_one_bar_per_task():
    bar = TqdmProgress(disable=True)
    bar(ProgressEvent("copy", 10, 100, "bytes"))
    assert "copy" in bar._bars
    bar(ProgressEvent("copy", 100, 100, "bytes", finished=True))
    assert bar._bars == {}
