"""SampleInspector driven from the kernel (no browser): navigation, every field kind, the grid,
typed and schema-less datasets, the atdata 0.7 fixtures, errors and the static fallback."""

from __future__ import annotations

import io
import statistics
import time

import numpy as np
import pytest
from numpy.typing import NDArray

pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")

import atdata_lab as atdata  # noqa: E402
from atdata_lab.widgets import SampleInspector  # noqa: E402
from tests.support.fixtures import fixture_path  # noqa: E402


def png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(data)).size


@atdata.packable
class Everything:
    gray: NDArray
    rgb: NDArray
    chw: NDArray
    rgba: NDArray
    curve: NDArray
    volume: NDArray
    movie: NDArray
    scalar: NDArray
    empty: NDArray
    text: str
    count: int
    score: float
    flag: bool
    raw: bytes
    items: list[int]
    meta: dict
    maybe: str | None = None


def everything(n=6):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        gray = rng.standard_normal((16, 12)).astype(np.float32)
        gray[0, 0] = np.nan
        gray[0, 1] = np.inf
        out.append(
            Everything(
                gray=gray,
                rgb=rng.integers(0, 255, (10, 8, 3), dtype=np.uint8),
                chw=rng.random((3, 10, 8)).astype(np.float32),
                rgba=np.full((6, 6, 4), i, dtype=np.uint8),
                curve=np.sin(np.linspace(0, 6, 200)) * (i + 1),
                volume=(np.arange(5 * 9 * 7, dtype=np.int16) % 11).reshape(5, 9, 7),
                movie=rng.random((2, 3, 8, 8)).astype(np.float32),
                scalar=np.array(float(i)),
                empty=np.zeros(0, np.float32),
                text=f"sample <{i}> ✓",
                count=i * 10,
                score=i / 4,
                flag=bool(i % 2),
                raw=bytes(range(i, i + 40)),
                items=list(range(i)),
                meta={"i": i, "nested": {"ok": True}},
                maybe=None if i % 2 else f"m{i}",
            )
        )
    return out


@pytest.fixture
def index(tmp_path):
    return atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))


@pytest.fixture
def inspector(index):
    entry = index.write(everything(), name="everything", maxcount=4, progress=False)
    return entry.inspect(seed=7)


EXPECTED_KINDS = {
    "gray": "image",
    "rgb": "image",
    "chw": "image",
    "rgba": "image",
    "curve": "line",
    "volume": "volume",
    "movie": "volume",
    "scalar": "scalar",
    "empty": "empty",
    "text": "str",
    "count": "int",
    "score": "float",
    "flag": "bool",
    "raw": "bytes",
    "items": "list",
    "meta": "dict",
    "maybe": "str",
}


# ------------------------------------------------------------------------------------------- navigation
def test_header_and_navigation(inspector, index):
    insp = inspector
    entry = index.get_entry_by_name("everything")
    assert insp._dom_classes == ("atdata-widget", "atdata-sample-inspector")
    assert insp.n == 6 and insp.k == 0 and insp.entry.name == "everything"
    url, _, key = insp.dataset.locate(0)
    assert insp.header.value.count("sample 0 of 6 (numbered 0–5) · key") == 1 and key in insp.header.value
    assert "shard everything-000000.tar" in insp.header.value and url == entry.data_urls[0]
    assert insp.prev_button.disabled and not insp.next_button.disabled
    insp.next()
    insp.next_button.click()
    assert insp.k == 2 and insp.slider.value == 2 and insp.jump.value == 2
    insp.goto(5)  # the second shard
    assert "sample 5 of 6" in insp.header.value and "everything-000001.tar" in insp.header.value
    assert insp.next_button.disabled
    insp.next()
    assert insp.k == 5
    insp.prev_button.click()
    assert insp.k == 4
    insp.slider.value = 1  # the front end's slider
    assert insp.k == 1 and insp.sample.count == 10
    insp.jump.value = 3  # the jump box
    assert insp.k == 3 and insp.slider.value == 3
    insp.goto(-1)
    assert insp.k == 5
    k = insp.random()
    assert insp.k == k and 0 <= k < 6
    again = SampleInspector(insp.dataset, seed=7)
    assert again.random() == k  # the same seed, the same draw
    insp.random_button.click()
    assert insp.slider.value == insp.k
    for w in (
        insp.prev_button,
        insp.next_button,
        insp.slider,
        insp.jump,
        insp.random_button,
        insp.header,
        insp.cmap_dropdown,
        insp.fields_box,
        insp.grid_box,
    ):
        assert any(c.startswith("atdata-sample-inspector-") for c in w._dom_classes)


def test_out_of_range_is_a_readable_error(inspector):
    with pytest.raises(IndexError, match=r"sample 6 is out of range: the dataset has 6 samples \(0–5\)"):
        inspector.goto(6)
    assert (
        inspector.errors.message
        == "Loading sample 6 failed: SampleIndexError: sample 6 is out of range: the "
        "dataset has 6 samples (0–5)"
    )
    assert inspector.k == 0  # still on the sample it showed
    inspector.next()
    assert not inspector.errors.visible


def test_random_access_is_fast_on_a_1k_sample_shard(index):
    @atdata.packable
    class Shot:
        image: NDArray
        trace: NDArray
        label: int

    rng = np.random.default_rng(1)
    samples = [
        Shot(
            image=rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
            trace=rng.standard_normal(256).astype(np.float32),
            label=i,
        )
        for i in range(1000)
    ]
    entry = index.write(samples, name="shots", progress=False)
    assert entry.num_shards == 1 and entry.num_samples == 1000
    t = time.perf_counter()
    insp = entry.inspect(seed=3)
    first = (time.perf_counter() - t) * 1000
    steps = []
    for k in [999, 1, 500, 998, 2, *range(600, 610)]:
        insp.goto(k)
        steps.append(insp.timings["step"])
        assert insp.sample.label == k
    for _ in range(10):
        insp.random()
        steps.append(insp.timings["step"])
    near_end = statistics.median([steps[0], steps[3]])
    near_start = statistics.median([steps[1], steps[4]])
    print(
        f"\ninspector on a 1k-sample shard: first render {first:.0f} ms (matplotlib import included), "
        f"step median {statistics.median(steps):.1f} ms, max {max(steps):.1f} ms; "
        f"k≈999 {near_end:.1f} ms vs k≈1 {near_start:.1f} ms"
    )
    # one seek per step (no iteration up to k): the end of the shard costs what the start costs
    assert near_end < near_start * 3 + 20
    assert statistics.median(steps) < 100


# ------------------------------------------------------------------------------------------- fields
def test_every_field_kind(inspector):
    insp = inspector
    assert insp.fields == EXPECTED_KINDS
    boxes = {c: b for c, b in zip(insp.fields, insp.fields_box.children)}
    for name, kind in EXPECTED_KINDS.items():
        assert f"atdata-sample-inspector-kind-{kind}" in boxes[name]._dom_classes
    # images: auto-scaled PNGs (small ones enlarged, pixels kept crisp)
    assert png_size(insp.field_png("gray")) == (12 * 8, 16 * 8)
    assert png_size(insp.field_png("rgb")) == (8 * 12, 10 * 12)
    assert png_size(insp.field_png("chw")) == png_size(insp.field_png("rgb"))  # CHW shows as H x W
    assert png_size(insp.field_png("rgba"))[0] > 0
    # a 1-D array: a matplotlib line plot
    assert png_size(insp.field_png("curve")) == (368, 136)
    # badges with dtype and shape, stats with NaN/Inf counts, and a histogram
    assert (
        insp.field_summary("gray") == "float32 (16, 12)" and insp.field_summary("curve") == "float64 (200,)"
    )
    view = insp._views["gray"]
    assert "float32 (16, 12)" in view.title.value and "atdata-badge" in view.title.value
    assert (
        "<th>NaN</th>" in view.stats.value and "<td>1</td><td>1</td></tr>" in view.stats.value
    )  # NaN 1, Inf 1
    assert "<svg class='atdata-histogram'" in view.stats.value
    assert "<th>min</th>" in insp._views["volume"].stats.value
    assert insp._views["scalar"].value.value == "<code>0.0</code>"
    assert "empty array" in insp._views["empty"].value.value
    # strings and numbers as they are (escaped); bytes as length + hex; lists/dicts as collapsible JSON
    assert insp.field_summary("text") == "sample <0> ✓" and "&lt;0&gt;" in insp._views["text"].value.value
    assert insp.field_summary("count") == "0" and insp.field_summary("score") == "0.0"
    assert insp.field_summary("flag") == "False"
    assert insp.field_summary("raw").startswith("40 bytes: 00 01 02 03")
    assert "atdata-hex" in insp._views["raw"].value.value and insp._views["raw"].value.value.endswith(
        " 27</code>"
    )
    assert insp._views["items"].value.value.startswith("<details class='atdata-json'><summary>list · 0 items")
    meta = insp._views["meta"].value.value
    assert "<summary>dict · 2 keys</summary>" in meta and "&quot;nested&quot;" in meta
    assert insp.field_summary("maybe") == "m0"
    insp.next()
    assert insp.fields["maybe"] == "none" and insp.field_summary("maybe") == "None"
    assert "list · 1 item<" in insp._views["items"].value.value
    assert insp.field_summary("score") == "0.25"


def test_views_are_reused_while_stepping(inspector):
    before = {n: id(v.box) for n, v in inspector._views.items()}
    children = inspector.fields_box.children
    inspector.goto(2)  # same kinds everywhere (maybe is a str again)
    assert {n: id(v.box) for n, v in inspector._views.items()} == before
    assert inspector.fields_box.children == children
    inspector.goto(1)  # maybe is None now: only that view is rebuilt
    after = {n: id(v.box) for n, v in inspector._views.items()}
    assert [n for n in before if before[n] != after[n]] == ["maybe"]


def test_colormap(inspector):
    gray, rgb = inspector.field_png("gray"), inspector.field_png("rgb")
    inspector.set_cmap("gray")
    assert inspector.cmap == "gray" and inspector.cmap_dropdown.value == "gray"
    assert inspector.field_png("gray") != gray  # single-channel images take the colormap
    assert inspector.field_png("rgb") == rgb  # RGB images do not
    assert not inspector.cmap_dropdown.disabled and "single-channel" in inspector.cmap_dropdown.tooltip
    inspector.cmap_dropdown.value = "magma"  # the front end's dropdown
    assert inspector.cmap == "magma"
    with pytest.raises(ValueError, match="unknown colormap 'jet2'"):
        inspector.set_cmap("jet2")


def test_slices_of_higher_d_arrays(inspector):
    vol = inspector._views["volume"]
    movie = inspector._views["movie"]
    assert len(vol.sliders) == 1 and vol.sliders[0].max == 4
    assert [s.max for s in movie.sliders] == [1, 2]
    assert all("atdata-sample-inspector-slice" in s._dom_classes for s in movie.sliders)
    first = inspector.field_png("volume")
    assert png_size(first) == (7 * 14, 9 * 14)  # a 9 x 7 slice, enlarged to about 128 px
    png = inspector.set_slice("volume", 3)
    assert png != first and inspector.slices["volume"] == [3] and vol.sliders[0].value == 3
    movie.sliders[1].value = 2  # the front end's slider
    assert inspector.slices["movie"] == [0, 2]
    inspector.next()  # the chosen slice stays while stepping
    assert inspector.slices["volume"] == [3] and inspector._views["volume"].sliders[0].value == 3
    with pytest.raises(IndexError, match="index 9 is out of range for axis 0 of 'volume' \\(size 5\\)"):
        inspector.set_slice("volume", 9)
    with pytest.raises(ValueError, match="field 'rgb' has no slices; fields with slices: volume, movie"):
        inspector.set_slice("rgb", 0)


# ------------------------------------------------------------------------------------------- grid
def test_grid_of_thumbnails(inspector):
    thumbs = inspector.show_grid()
    assert inspector.grid_field == "gray" and len(thumbs) == 6 and all(thumbs)
    assert inspector.view_toggle.value == "Grid" and inspector.grid_panel.layout.display == "flex"
    assert inspector.sample_panel.layout.display == "none"
    assert inspector.grid_field_dropdown.options == ("gray", "rgb", "chw", "rgba", "volume", "movie")
    assert len(inspector.grid_box.children) == 6
    assert "gray: samples 0–5 of 6" in inspector.grid_status.value
    inspector.grid_field_dropdown.value = "rgb"  # the front end's field choice
    assert inspector.grid_field == "rgb" and png_size(inspector.show_grid("rgb", n=3)[0]) == (32, 40)
    cell = inspector.grid_box.children[2]
    assert "atdata-sample-inspector-thumb" in cell._dom_classes
    cell.children[-1].click()  # open sample 2 from its thumbnail
    assert inspector.k == 2 and inspector.view_toggle.value == "Sample"
    assert inspector.sample_panel.layout.display == "flex" and inspector.grid_panel.layout.display == "none"
    inspector.view_toggle.value = "Grid"  # the toggle
    assert inspector.grid_panel.layout.display == "flex" and inspector.grid_field == "rgb"
    inspector.view_toggle.value = "Sample"
    assert inspector.sample_panel.layout.display == "flex"


@atdata.packable
class Photo:
    image: NDArray
    mask: NDArray
    trace: NDArray
    label: str
    caption: str
    score: float


LABELS = ("cat", "dog", "bird")


def photos(n=72):
    return [
        Photo(
            image=np.full((12, 16, 3), i, np.uint8),
            mask=(np.arange(8 * 8).reshape(8, 8) % (i + 2)).astype(np.float32),
            trace=np.arange(10, dtype=np.float32),
            label=LABELS[i % 3],
            caption=f"photo {i}: " + "a very long caption that cannot fit on a tile " * 8,
            score=i / 10,
        )
        for i in range(n)
    ]


@pytest.fixture
def photo_inspector(tmp_path):
    ds = atdata.write_samples(photos(), tmp_path / "photos", maxcount=20, manifest=True)
    return SampleInspector(ds)


def test_grid_pages_through_the_whole_dataset(photo_inspector):
    insp = photo_inspector
    reads = []
    read_at = insp.dataset._read_at
    insp.dataset._read_at = lambda url, i, key: reads.append(key) or read_at(url, i, key)

    def no_iteration(*_a, **_k):
        raise AssertionError("the grid iterated the dataset")

    insp.dataset.ordered = insp.dataset.__iter__ = no_iteration
    thumbs = insp.show_grid("image", n=16, page=2, captions=("label",))
    assert len(thumbs) == 16 and all(thumbs) and len(reads) == 16  # one read per tile
    assert insp.grid_indices == list(range(32, 48)) and insp.grid_pages == 5 and insp.grid_count == 72
    assert insp.grid_status.value == ("image: samples 32–47 of 72 (numbered from 0) · page 2 of 5 (0–4)")
    tiles = [id(t.box) for t in insp._tiles]
    assert [c.children[-1].description for c in insp.grid_box.children][:2] == ["#32", "#33"]
    assert not insp.first_page_button.disabled and not insp.prev_page_button.disabled
    assert not insp.next_page_button.disabled and not insp.last_page_button.disabled
    insp.next_page_button.click()  # the front end's buttons
    assert insp.grid_indices == list(range(48, 64)) and insp.page_jump.value == 3
    insp.last_page_button.click()
    assert insp.grid_indices == list(range(64, 72)) and len(insp.grid_box.children) == 8
    assert insp.next_page_button.disabled and insp.last_page_button.disabled
    assert "samples 64–71 of 72" in insp.grid_status.value and "page 4 of 5" in insp.grid_status.value
    insp.prev_page_button.click()
    assert insp.grid_page_index == 3
    insp.first_page_button.click()
    assert insp.grid_indices == list(range(16)) and insp.first_page_button.disabled
    assert insp.prev_page_button.disabled and not insp.next_page_button.disabled
    insp.page_jump.value = 2  # the page box
    assert insp.grid_indices == list(range(32, 48))
    assert [id(t.box) for t in insp._tiles[:16]] == tiles  # paging reuses the tiles
    before = len(reads)
    insp.grid_page(2)  # cached: paging back reads nothing
    assert len(reads) == before
    insp.grid_page(-1)
    assert insp.grid_page_index == 4
    insp.page_size_dropdown.value = 32  # the page size: back to the first page
    assert insp.grid_page_size == 32 and insp.grid_pages == 3 and insp.grid_indices == list(range(32))
    assert insp.page_jump.max == 2
    with pytest.raises(IndexError, match=r"page 3 is out of range: the grid has 3 pages \(0–2\)"):
        insp.grid_page(3)
    assert insp.grid_page_index == 0
    with pytest.raises(ValueError, match="at least 1 sample, not 0"):
        insp.show_grid(n=0)


def test_grid_field_picker_and_captions(photo_inspector):
    insp = photo_inspector
    insp.show_grid()
    # only fields that show as images; only short values as captions
    assert insp.grid_field_dropdown.options == ("image", "mask")
    assert insp.caption_select.options == ("label", "caption", "score")
    assert insp.grid_captions == () and insp._tiles[0].captions.value == ""
    insp.caption_select.value = ("label", "caption")  # the front end's multi-select
    assert insp.grid_captions == ("label", "caption")
    html = insp._tiles[4].captions.value
    assert "title='label: dog'>dog</div>" in html
    assert "class='atdata-sample-inspector-caption' title='caption: photo 4: a very long" in html
    cut = html.split(">")[-2].removesuffix("</div")
    assert cut.endswith("…") and len(cut) == 200  # the tile shows less, the tooltip the full text
    insp.grid_field_dropdown.value = "mask"  # the image field
    assert insp.grid_field == "mask" and insp.grid_captions == ("label", "caption")
    assert png_size(insp.show_grid(captions=["score"])[3]) == (48, 48)  # 8 x 8, enlarged
    assert (
        insp._tiles[3].captions.value
        == "<div class='atdata-sample-inspector-caption' title='score: 0.3'>0.3</div>"
    )
    with pytest.raises(ValueError, match="cannot caption tiles with 'trace'; fields with a short value"):
        insp.show_grid(captions=("trace",))
    with pytest.raises(ValueError, match="no image field 'trace'; image fields: image, mask"):
        insp.show_grid("trace")


def test_grid_follows_a_filter(photo_inspector):
    from atdata_lab.manifest import F

    insp = photo_inspector
    insp.show_grid("image", n=8, captions=("label",))
    insp._grid_over([5, 9, 70])  # the hook a filter sets: sample numbers...
    assert insp.grid_indices == [5, 9, 70] and insp.grid_count == 3 and insp.grid_pages == 1
    assert insp.grid_status.value == (
        "image: matches 0–2 of 3 (numbered from 0; 72 samples in all) · page 0 of 1 (0–0)"
    )
    assert insp.next_page_button.disabled and insp.prev_page_button.disabled and insp.page_jump.disabled
    hits = insp.dataset.query(F.label == "dog")  # ...or a query's locations
    insp._grid_over(hits)
    dogs = [k for k in range(72) if k % 3 == 1]
    assert insp.grid_count == 24 and insp.grid_indices == dogs[:8] and insp.grid_page_index == 0
    assert all("title='label: dog'" in t.captions.value for t in insp._tiles[:8])
    insp.grid_page(2)
    assert insp.grid_indices == dogs[16:24]
    assert [insp.dataset.index_of(h) for h in hits] == dogs
    insp._grid_over([])
    assert insp.grid_box.children == () and insp.grid_status.value == "image: no samples match"
    insp._grid_over(None)  # no filter: every sample again
    assert insp.grid_count == 72 and insp.grid_indices == list(range(8))

    # the inspector's filter (set by its Table view, or by code): the grid shown follows at once...
    insp.grid_page(3)
    insp.filter = F.label == "cat"
    cats = [k for k in range(72) if k % 3 == 0]
    assert insp.grid_page_index == 0 and insp.grid_indices == cats[:8] and insp.grid_count == 24
    assert insp.grid_status.value.startswith("image: matches 0–7 of 24 (numbered from 0; 72 samples in all)")
    # ...a hidden grid when it is next shown
    insp.show_sample(0)
    insp.filter = F.score > 6.55
    insp.view_toggle.value = "Grid"
    assert (
        insp.grid_indices == [66, 67, 68, 69, 70, 71]
        and insp.grid_box.children[0].children[-1].description == "#66"
    )
    insp.filter = None
    assert insp.grid_count == 72 and insp.grid_indices == list(range(8))


def test_clicking_a_tile_opens_its_sample(photo_inspector):
    insp = photo_inspector
    insp.show_grid(n=16, page=3)
    insp.grid_box.children[5].children[-1].click()
    assert insp.k == 53 and insp.view_toggle.value == "Sample" and insp.sample.score == 5.3
    assert insp.grid_panel.layout.display == "none" and "sample 53 of 72" in insp.header.value
    insp.view_toggle.value = "Grid"  # back where it was
    assert insp.grid_page_index == 3 and insp.grid_indices[5] == 53


def test_colormap_is_disabled_when_no_field_takes_it(index):
    """RGB(A) images show their own colours: the Colormap dropdown is disabled and says why."""
    rgb = np.zeros((4, 5, 3), np.uint8)
    entry = index.write([atdata.DictSample({"rgb": rgb, "n": 1})], name="rgbonly", progress=False)
    insp = entry.inspect()
    assert insp.fields["rgb"] == "image" and insp.cmap_dropdown.disabled
    assert "RGB(A) images show their own colours" in insp.cmap_dropdown.tooltip
    assert not insp.view_toggle.disabled  # the grid still applies


def test_grid_needs_an_image_field(index):
    entry = index.write([atdata.DictSample({"x": np.arange(3), "s": "a"})], name="noimg", progress=False)
    insp = entry.inspect()
    # Grid cannot apply: the toggle is disabled and its Grid button says why
    assert insp.view_toggle.disabled and insp.view_toggle.tooltips[1].startswith("This dataset has no image")
    assert insp.cmap_dropdown.disabled
    with pytest.raises(ValueError, match="no image field"):
        insp.show_grid()
    insp.view_toggle.value = "Grid"
    assert (
        insp.errors.message
        == "Showing the grid failed: InvalidArgumentError: this dataset has no image field to show as "
        "a grid"
    )
    assert insp.view_toggle.value == "Sample" and insp.sample_panel.layout.display != "none"


# ------------------------------------------------------------------------------------------- sources
def test_schema_less_dict_samples(index):
    entry = index.write(
        [
            atdata.DictSample({"img": np.full((4, 5), i, np.float32), "name": f"n{i}", "v": [i]})
            for i in range(3)
        ],
        name="dicts",
        progress=False,
    )
    plain = atdata.Dataset(entry.data_urls)  # no index, no type: DictSample, offsets scanned once
    insp = SampleInspector(plain)
    assert insp.n == 3 and insp.fields == {"img": "image", "name": "str", "v": "list"}
    insp.goto(2)
    assert insp.field_summary("name") == "n2" and insp.sample["img"][0, 0] == 2


def test_atdata_fixtures(index):
    alltypes = atdata.Dataset(str(fixture_path("alltypes.tar")))
    insp = alltypes.inspect()
    assert insp.n == 40
    assert insp.fields["image"] == "image" and insp.field_summary("image") == "uint8 (8, 6, 3)"
    assert {k: insp.fields[k] for k in ("raw", "tags", "weights")} == {
        "raw": "bytes",
        "tags": "list",
        "weights": "list",
    }
    kinds = set()
    for k in range(insp.n):
        insp.goto(k)
        kinds |= set(insp.fields.values())
    assert {"image", "str", "int", "float", "bool", "bytes", "list", "none"} <= kinds
    experiment = atdata.Dataset(
        [str(fixture_path("experiment-000000.tar")), str(fixture_path("experiment-000001.tar"))]
    )
    insp = SampleInspector(experiment, start=700)
    assert insp.n == 1000 and insp.k == 700 and "experiment-000001.tar" in insp.header.value
    assert insp.fields == {"measurement": "line", "timestamp": "float", "sensor_id": "str"}
    assert insp.field_summary("measurement") == "float32 (64,)"


def test_by_name_with_an_index(index):
    index.write(everything(2), name="two", progress=False)
    insp = SampleInspector("two", index=index, start=1)
    assert insp.k == 1 and insp.entry.name == "two"
    with pytest.raises(ValueError, match="needs index="):
        SampleInspector("two")
    with pytest.raises(TypeError, match="shows a Dataset or an IndexEntry, not int"):
        SampleInspector(3)
    with pytest.raises(ValueError, match="unknown colormap"):
        SampleInspector("two", index=index, cmap="nope")


def test_decode_errors_are_shown(index):
    @atdata.packable
    class Wrong:
        image: NDArray
        label: str  # the data holds ints

    entry = index.write(everything(2), name="ok", progress=False)
    ds = atdata.Dataset(entry.data_urls, sample_type=Wrong)
    insp = SampleInspector(ds)
    assert insp.errors.visible and insp.k == -1
    assert insp.errors.message.startswith("Loading sample 0 failed: SampleDecodeError: shard ")
    assert insp.errors.message.endswith("field 'image': is missing but Wrong.image is not Optional")
    with pytest.raises(atdata.SampleDecodeError):
        insp.goto(1)
    assert repr(insp) == "SampleInspector(2 samples)"


# ------------------------------------------------------------------------------------------- fallback
def test_static_fallback(inspector):
    bundle = inspector._repr_mimebundle_()
    assert bundle["text/plain"].startswith("SampleInspector(sample 0 of 6 (numbered 0–5) · key ")
    html = bundle["text/html"]
    assert "sample 0 of 6" in html and "<b>gray</b>" in html and "data:image/png;base64," in html
    assert "float32 (16, 12)" in html and "40 bytes: 00 01" in html and "A static view" in html
