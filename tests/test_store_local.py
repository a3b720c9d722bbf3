"""LocalDiskStore opts into the data store conformance suite."""

from __future__ import annotations

import os

import pytest

import atdata_lab as atdata
from atdata_lab.stores.local import TEMP_MARK, clean_stale_temp_files
from tests.conformance.store_suite import StoreSuite


class TestLocalDiskStore(StoreSuite):
    @pytest.fixture
    def store(self, tmp_path):
        return atdata.LocalDiskStore(tmp_path / "store")

    @pytest.fixture
    def other_store(self, tmp_path):
        return atdata.LocalDiskStore(tmp_path / "other")


def test_default_root_is_under_atdata_home(atdata_home):
    assert atdata.LocalDiskStore().root == (atdata_home / "data").resolve()


def test_temp_files_of_dead_writers_are_cleaned(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    dead = folder / f".x.tar{TEMP_MARK}999999-abcd1234"
    mine = folder / f".y.tar{TEMP_MARK}{os.getpid()}-abcd1234"
    dead.write_bytes(b"x")
    mine.write_bytes(b"y")
    assert clean_stale_temp_files(folder) == 1
    assert not dead.exists() and mine.exists()
