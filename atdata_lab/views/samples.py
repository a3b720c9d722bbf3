"""Views of samples (the sample inspector): field kinds, value text, array statistics, histograms,
images and line plots.

Pure functions of their arguments (no widget, no I/O). numpy is the only import at module level;
Pillow and matplotlib are imported on first use (they come with ``atdata-lab[widgets]``).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..sample import DictSample
from ..schema import fields_of
from .text import dtype_text, esc, kv_text, plain, shard_label

__all__ = [
    "ArrayStats",
    "array_stats",
    "CAPTION_KINDS",
    "caption_html",
    "caption_text",
    "grid_status_text",
    "classify",
    "colormaps",
    "uses_colormap",
    "hex_preview",
    "histogram",
    "histogram_svg",
    "image_layout",
    "json_preview",
    "jsonable",
    "line_png",
    "PLOT_INK",
    "line_points",
    "png_bytes",
    "sample_fields",
    "sample_header",
    "sample_text",
    "slice_axes",
    "take_slice",
    "thumbnail_png",
    "to_rgba",
    "value_summary",
    "value_text",
]


def sample_fields(sample: Any) -> list[tuple[str, Any]]:
    """``(name, value)`` of each field of a sample: a ``@packable`` object or a ``DictSample``."""
    if isinstance(sample, DictSample):
        return list(sample.items())
    if isinstance(sample, dict):
        return list(sample.items())
    return [(f.name, getattr(sample, f.name)) for f in fields_of(type(sample))]


def sample_header(k: int, n: int, key: str, url: str) -> str:
    """``'sample 10 of 1,000 (numbered 0–999) · key 000010 · shard data-000000.tar'``.

    Samples are numbered from 0 everywhere (the slider, "Go to", ``goto(k)``, the grid's ``#k``),
    and the header says so, so "sample 999 of 1,000" is not read as off by one."""
    numbered = f" (numbered 0–{n - 1:,})" if n > 1 else ""
    return f"sample {k:,} of {n:,}{numbered} · key {key} · shard {shard_label(url)}"


#: The kinds (:func:`classify`) a grid tile can be captioned with: one short value each.
CAPTION_KINDS = ("str", "int", "float", "bool", "scalar", "none")


def caption_text(value: Any, limit: int = 200) -> str:
    """A field value as a grid caption: its text on one line (a 0-D array as its value), at most
    ``limit`` characters (the tile shows less, cut with an ellipsis; the full text is its tooltip)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    return plain(value_text(value) if not isinstance(value, str) else value, limit)


def caption_html(captions: Sequence[tuple[str, str]]) -> str:
    """The captions of a grid tile: one line per ``(field, text)``, cut to the tile's width by the
    stylesheet, the field and the full text on hover."""
    return "".join(
        f"<div class='atdata-sample-inspector-caption' title='{esc(name)}: {esc(text)}'>{esc(text)}</div>"
        for name, text in captions
    )


def grid_status_text(field: str, page: int, page_size: int, count: int, total: int, *, filtered: bool) -> str:
    """What a page of the grid shows, numbered from 0 like every sample number:
    ``'image: samples 32–47 of 72 (numbered from 0) · page 2 of 5 (0–4)'``; over a filter,
    ``'image: matches 0–15 of 120 (numbered from 0; 1,000 samples in all) · page 0 of 8 (0–7)'``."""
    what = "matches" if filtered else "samples"
    if count == 0:
        return f"{field}: no samples match" if filtered else f"{field}: no samples"
    pages = -(-count // page_size)
    first = page * page_size
    last = min(first + page_size, count) - 1
    span = f"{first:,}–{last:,}" if last > first else f"{first:,}"
    within = f"; {total:,} samples in all" if filtered else ""
    return f"{field}: {what} {span} of {count:,} (numbered from 0{within}) · page {page:,} of {pages:,} (0–{pages - 1:,})"


def image_layout(shape: Sequence[int]) -> str | None:
    """How an array shape shows as an image: ``'HW'``, ``'HWC'``, ``'CHW'``, or None.

    2-D arrays are images; 3-D arrays whose last (else first) axis has 1, 3 or 4 channels are
    images; anything else is not (1-D is a line, higher-D needs slicing).
    """
    if len(shape) == 2 and shape[0] > 0 and shape[1] > 0:
        return "HW"
    if len(shape) == 3 and min(shape) > 0:
        if shape[2] in (1, 3, 4):
            return "HWC"
        if shape[0] in (1, 3, 4):
            return "CHW"
    return None


def classify(value: Any) -> str:
    """The rendering kind of a field value.

    ``none``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``list``, ``dict``, and for arrays:
    ``scalar`` (0-D), ``empty`` (no elements), ``line`` (1-D), ``image`` (see :func:`image_layout`),
    ``volume`` (higher-D: slice selectors and an image), ``array`` (not numeric: strings, objects).
    Anything else is ``other``.
    """
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            return "array"
        if value.ndim == 0:
            return "scalar"
        if value.size == 0:
            return "empty"
        if value.ndim == 1:
            return "line"
        if image_layout(value.shape) is not None:
            return "image"
        return "volume"
    return "other"


def value_text(value: Any) -> str:
    """Strings, numbers, booleans and None as they read (floats with ``repr`` precision)."""
    if value is None:
        return "None"
    if isinstance(value, np.generic):
        value = value.item()
    return str(value) if not isinstance(value, float) else repr(value)


def hex_preview(data: bytes | bytearray | memoryview, limit: int = 64) -> str:
    """``'12 bytes: 00 01 ff …'``: the length and the first ``limit`` bytes in hex."""
    b = bytes(data)
    head = " ".join(f"{x:02x}" for x in b[:limit])
    more = " …" if len(b) > limit else ""
    unit = "byte" if len(b) == 1 else "bytes"
    return f"{len(b):,} {unit}" + (f": {head}{more}" if b else "")


def jsonable(value: Any, *, max_items: int = 200) -> Any:
    """``value`` made JSON-safe for display: arrays and bytes become short descriptions, long lists
    are cut (with a note of how many items were left out)."""
    if isinstance(value, np.ndarray):
        if value.size <= 16 and value.dtype.kind in "biuf":
            return {"ndarray": f"{value.dtype.str}{list(value.shape)}", "values": value.tolist()}
        return {"ndarray": f"{value.dtype.str}{list(value.shape)}"}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": hex_preview(value, 16)}
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k): jsonable(v, max_items=max_items) for k, v in items[:max_items]}
        if len(items) > max_items:
            out["…"] = f"{len(items) - max_items} more keys"
        return out
    if isinstance(value, (list, tuple)):
        out_list = [jsonable(v, max_items=max_items) for v in value[:max_items]]
        if len(value) > max_items:
            out_list.append(f"… {len(value) - max_items} more items")
        return out_list
    return value


def json_preview(value: Any, *, max_items: int = 200) -> str:
    """Indented JSON of :func:`jsonable` ``(value)``."""
    return json.dumps(jsonable(value, max_items=max_items), indent=2, ensure_ascii=False)


@dataclass(frozen=True)
class ArrayStats:
    """Statistics of an array's finite values, plus counts of NaN and ±Inf."""

    dtype: str
    shape: tuple[int, ...]
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    nan: int
    inf: int

    @property
    def badge(self) -> str:
        """``'float32 (64,)'``: dtype (as :func:`~atdata_lab.views.text.dtype_text`) and shape."""
        shape = "(" + ", ".join(str(s) for s in self.shape) + (",)" if len(self.shape) == 1 else ")")
        return f"{dtype_text(self.dtype)} {shape}"

    def rows(self) -> list[tuple[str, str]]:
        def g(x: float | None) -> str:
            return "—" if x is None else f"{x:.6g}"

        return [
            ("min", g(self.min)),
            ("max", g(self.max)),
            ("mean", g(self.mean)),
            ("std", g(self.std)),
            ("NaN", f"{self.nan:,}"),
            ("Inf", f"{self.inf:,}"),
        ]


def _numeric(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "c":
        return np.abs(arr)
    if arr.dtype.kind == "b":
        return arr.astype(np.uint8)
    return arr


def array_stats(arr: np.ndarray) -> ArrayStats:
    """min, max, mean, std of the finite values (complex: of magnitudes), NaN and Inf counts."""
    a = np.asarray(arr)
    if a.dtype.kind not in "biufc" or a.size == 0:
        return ArrayStats(a.dtype.str, tuple(a.shape), None, None, None, None, 0, 0)
    x = _numeric(a)
    nan = inf = 0
    if x.dtype.kind == "f":
        nan_mask = np.isnan(x)
        inf_mask = np.isinf(x)
        nan, inf = int(nan_mask.sum()), int(inf_mask.sum())
        if nan or inf:
            x = x[~(nan_mask | inf_mask)]
    if x.size == 0:
        return ArrayStats(a.dtype.str, tuple(a.shape), None, None, None, None, nan, inf)
    xf = x.astype(np.float64, copy=False)
    return ArrayStats(
        a.dtype.str,
        tuple(a.shape),
        float(xf.min()),
        float(xf.max()),
        float(xf.mean()),
        float(xf.std()),
        nan,
        inf,
    )


def histogram(arr: np.ndarray, bins: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges of the finite values (``(array([]), array([]))`` when there are none)."""
    a = np.asarray(arr)
    if a.dtype.kind not in "biufc" or a.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    x = _numeric(a).ravel()
    if x.dtype.kind == "f":
        x = x[np.isfinite(x)]
    if x.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(x, bins=bins, range=(lo, hi))
    return counts, edges


def histogram_svg(
    counts: Sequence[int], edges: Sequence[float] | None = None, *, width: int = 160, height: int = 40
) -> str:
    """A small inline SVG bar chart of ``counts`` (bars in ``currentColor``, so it follows the theme)."""
    counts = list(counts)
    if not counts:
        return "<span class='atdata-muted'>no finite values</span>"
    top = max(counts) or 1
    w = width / len(counts)
    bars = []
    for i, c in enumerate(counts):
        h = 0 if c == 0 else max(1.0, height * c / top)
        bars.append(
            f"<rect x='{i * w:.2f}' y='{height - h:.2f}' width='{max(w - 1, 0.5):.2f}' height='{h:.2f}'>"
            f"<title>{c:,}</title></rect>"
        )
    title = ""
    if edges is not None and len(edges) >= 2:
        title = f"<title>histogram of {sum(counts):,} values in [{edges[0]:.4g}, {edges[-1]:.4g}]</title>"
    return (
        f"<svg class='atdata-histogram' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        f"xmlns='http://www.w3.org/2000/svg' fill='currentColor' role='img'>{title}{''.join(bars)}</svg>"
    )


def slice_axes(shape: Sequence[int]) -> list[int]:
    """The axes a person picks an index on, to see a higher-D array as an image.

    The image is the last two axes, or the last three when the last one holds 1, 3 or 4
    channels; every axis before that gets a selector.
    """
    nd = len(shape)
    keep = 3 if nd >= 4 and shape[-1] in (1, 3, 4) else 2
    return list(range(max(nd - keep, 0)))


def take_slice(arr: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """``arr`` indexed on its leading :func:`slice_axes` with ``indices`` (clamped to range)."""
    axes = slice_axes(arr.shape)
    idx = list(indices) + [0] * (len(axes) - len(indices))
    sel = tuple(min(max(int(i), 0), arr.shape[a] - 1) for a, i in zip(axes, idx))
    return arr[sel]


def uses_colormap(value: Any) -> bool:
    """Whether a colormap changes how ``value`` shows: a single-channel image (2-D, or 3-D with one
    channel), or a higher-D array whose slices are. RGB(A) images show their own colours."""
    if not isinstance(value, np.ndarray):
        return False
    a = value
    if classify(a) == "volume":
        a = take_slice(a, [])
    layout = image_layout(a.shape) if classify(a) == "image" else None
    if layout == "HW":
        return True
    return (layout == "HWC" and a.shape[2] == 1) or (layout == "CHW" and a.shape[0] == 1)


def colormaps() -> list[str]:
    """Colormap names offered by the inspector (matplotlib's perceptual ones and gray)."""
    return ["viridis", "gray", "magma", "inferno", "plasma", "cividis", "coolwarm", "twilight"]


def _scale01(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        x = np.where(finite, x, np.nan)
        if not finite.any():
            return np.zeros(x.shape, dtype=np.float32)
        lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    else:
        lo, hi = float(x.min()), float(x.max())
    out = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return np.nan_to_num(out, nan=0.0)


def to_rgba(arr: np.ndarray, cmap: str = "viridis", layout: str | None = None) -> np.ndarray:
    """An image array as uint8 RGBA (H, W, 4), auto-scaled.

    Single-channel images are scaled min..max and coloured with ``cmap``; RGB(A) images stay as
    they are when uint8, else are scaled min..max (all channels together). NaN and Inf show as
    the lowest colour.

    Raises:
        ValueError: the array is not image-like (see :func:`image_layout`).
    """
    a = np.asarray(arr)
    layout = layout or image_layout(a.shape)
    if layout is None:
        raise InvalidArgumentError(
            f"an array of shape {a.shape} is not an image (2-D, or 3-D with 1, 3 or 4 channels)"
        )
    a = _numeric(a)
    if layout == "CHW":
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        lut = _lut(cmap)
        idx = (_scale01(a) * 255).astype(np.uint8)
        return lut[idx]
    if a.dtype == np.uint8:
        rgb = a
    else:
        rgb = (_scale01(a) * 255).astype(np.uint8)
    if rgb.shape[2] == 3:
        alpha = np.full(rgb.shape[:2] + (1,), 255, dtype=np.uint8)
        rgb = np.concatenate([rgb, alpha], axis=2)
    return np.ascontiguousarray(rgb)


_luts: dict[str, np.ndarray] = {}


def _lut(name: str) -> np.ndarray:
    lut = _luts.get(name)
    if lut is None:
        if name == "gray":
            g = np.arange(256, dtype=np.uint8)
            lut = np.stack([g, g, g, np.full(256, 255, np.uint8)], axis=1)
        else:
            from matplotlib import colormaps as mpl_colormaps  # lazily: matplotlib is optional

            try:
                cm = mpl_colormaps[name]
            except KeyError:
                raise InvalidArgumentError(
                    f"unknown colormap {name!r}; choose one of {', '.join(colormaps())}"
                ) from None
            lut = (cm(np.linspace(0.0, 1.0, 256)) * 255).round().astype(np.uint8)
        _luts[name] = lut
    return lut


def png_bytes(rgba: np.ndarray, *, max_size: int | None = None, min_size: int | None = None) -> bytes:
    """PNG bytes of a uint8 (H, W, 3|4) image. ``max_size`` shrinks it (keeping its aspect) so its
    longer side fits; ``min_size`` enlarges small images (nearest neighbour: pixels stay crisp)."""
    from PIL import Image  # lazily: Pillow comes with matplotlib

    img = Image.fromarray(np.ascontiguousarray(rgba))
    w, h = img.size
    longer = max(w, h)
    if max_size and longer > max_size:
        s = max_size / longer
        img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    elif min_size and longer < min_size:
        s = max(1, min_size // longer)
        img = img.resize((w * s, h * s), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def thumbnail_png(arr: np.ndarray, size: int = 96, cmap: str = "viridis") -> bytes | None:
    """A PNG thumbnail of an image-like array (a higher-D one: its first slice), or None."""
    a = np.asarray(arr)
    if classify(a) == "volume":
        a = take_slice(a, [])
    if classify(a) != "image":
        return None
    return png_bytes(to_rgba(a, cmap), max_size=size, min_size=size // 2)


def line_points(arr: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` to plot a 1-D array as a line: every value, or an even stride of at most
    ``max_points`` (complex: magnitudes; bool: 0/1)."""
    a = _numeric(np.asarray(arr)).ravel()
    step = max(1, -(-a.size // max_points))
    x = np.arange(0, a.size, step)
    return x, a[::step]


#: The colour of a line plot's ticks, tick labels and spines: dark on a transparent background, so
#: it reads on a light theme's background and, inverted by ``sample_inspector.css``, on a dark one.
PLOT_INK = "#212121"


def line_png(values: np.ndarray, width: float = 4.6, height: float = 1.7) -> bytes:
    """A line plot of a 1-D array as PNG bytes (matplotlib's Agg canvas: no global state).

    Ticks and spines are :data:`PLOT_INK` on a transparent background."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazily: matplotlib is optional
    from matplotlib.figure import Figure

    x, y = line_points(values)
    fig = Figure(figsize=(width, height), dpi=80)
    fig.patch.set_alpha(0.0)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.1, 0.16, 0.88, 0.78))
    ax.set_facecolor("none")
    ax.plot(x, y, linewidth=1.0, color="#1f77b4")
    ax.margins(x=0)
    for spine in ax.spines.values():
        spine.set_color(PLOT_INK)
    ax.tick_params(colors=PLOT_INK, labelcolor=PLOT_INK, labelsize=7, length=2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", transparent=True)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# plain text (the command line)
# ---------------------------------------------------------------------------------------------
def value_summary(value: Any, limit: int = 200) -> str:
    """A field value on one line, at most about ``limit`` characters: an array as its dtype, shape
    and statistics (never its values, except 0-D), bytes as a hex preview, text and containers
    cut (through :func:`~atdata_lab.views.text.plain`, so control characters cannot reach a terminal)."""
    kind = classify(value)
    if isinstance(value, np.ndarray):
        st = array_stats(value)
        if kind == "scalar":
            return plain(f"ndarray {st.badge} = {value_text(value.item())}", limit)
        if st.min is None:
            extra = " (empty)" if kind == "empty" else ""
            extra += f", NaN {st.nan:,}, Inf {st.inf:,}" if st.nan or st.inf else ""
            return plain(f"ndarray {st.badge}{extra}", limit)
        text = f"ndarray {st.badge} " + " ".join(f"{k} {v}" for k, v in st.rows() if k not in ("NaN", "Inf"))
        if st.nan or st.inf:
            text += f" NaN {st.nan:,} Inf {st.inf:,}"
        return plain(text, limit)
    if kind == "bytes":
        return plain(hex_preview(value, 16), limit)
    if kind == "str":
        return plain(repr(value), limit)
    if kind in ("list", "dict"):
        short = json.dumps(jsonable(value, max_items=20), ensure_ascii=False, default=str)
        return plain(f"{kind} of {len(value):,}: {short}", limit)
    return plain(value_text(value), limit)


def sample_text(sample: Any, header: str = "") -> str:
    """A sample as plain text: ``header`` (e.g. :func:`sample_header`), then one
    ``field: summary`` line per field (:func:`value_summary`)."""
    body = kv_text([(name, value_summary(v)) for name, v in sample_fields(sample)], indent="  ")
    return f"{plain(header)}\n{body}" if header else body
