"""Every test runs with its own ATDATA_HOME, so nothing touches the real home directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def atdata_home(tmp_path, monkeypatch):
    """A fresh ``ATDATA_HOME`` for each test (index DB and default data dir live under it)."""
    home = tmp_path / "atdata-home"
    home.mkdir()
    monkeypatch.setenv("ATDATA_HOME", str(home))
    for name in ("ATDATA_APPVIEW_URL", "ATDATA_APPVIEW"):  # an AppView only where a test names one
        monkeypatch.delenv(name, raising=False)
    import atdata_lab.index

    monkeypatch.setattr(atdata_lab.index, "_default_index", None)  # the default index is per test too
    return home
