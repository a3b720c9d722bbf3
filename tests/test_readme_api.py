"""The README's "API at a glance" table is kept honest: every name it shows exists, and every
top-level ``atdata.X`` it shows is in ``atdata_lab.__all__`` (docs kept honest by a test)."""

from __future__ import annotations

import re
from pathlib import Path

import atdata_lab
from atdata_lab import Dataset, Index, IndexEntry
from atdata_lab.promotion import PromotionPlan

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

# what a lower-case name in the table stands for
RECEIVERS = {"index": Index, "entry": IndexEntry, "ds": Dataset, "plan": PromotionPlan}
# the class a row is about, from its first cell
ROW_CLASSES = {"atdata.Dataset": Dataset, "atdata.Index": Index}


def table_rows() -> list[tuple[str, str]]:
    section = README.split("## API at a glance", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] and not set(cells[0]) <= {"-", " "}:
            rows.append((cells[0], cells[1]))
    return rows


def test_the_table_is_there():
    assert len(table_rows()) >= 8


def test_every_top_level_name_exists_and_is_public():
    names = set()
    for first, second in table_rows():
        names |= set(re.findall(r"\batdata\.([A-Za-z_]\w*)", first + " " + second))
    assert {"packable", "Dataset", "Index", "load_dataset", "write_samples", "schema_diff"} <= names
    for name in sorted(names):
        assert hasattr(atdata_lab, name), f"README shows atdata.{name}, which does not exist"
        assert name in atdata_lab.__all__, f"README shows atdata.{name}, which is not in atdata_lab.__all__"


def test_every_method_shown_exists():
    checked = 0
    for first, second in table_rows():
        row_class = next((cls for prefix, cls in ROW_CLASSES.items() if first.startswith(f"`{prefix}")), None)
        for code in re.findall(r"`([^`]+)`", second):
            m = re.match(r"(\w+)\.(\w+)\(", code)
            if m and m.group(1) in RECEIVERS:
                assert hasattr(RECEIVERS[m.group(1)], m.group(2)), f"README shows {code}"
                checked += 1
            elif code.startswith(".") and row_class is not None:
                method = re.match(r"\.(\w+)", code).group(1)
                assert hasattr(row_class, method), f"README shows {row_class.__name__}{code}"
                checked += 1
    assert checked >= 25


def test_the_widgets_shown_exist():
    import atdata_lab.widgets as widgets

    row = dict(table_rows())["widgets"]
    for name in re.findall(r"atdata_lab\.widgets\.(\w+)", row) + re.findall(r"`([A-Z]\w+)\(", row):
        assert name in widgets.__all__, f"README shows widgets.{name}"
