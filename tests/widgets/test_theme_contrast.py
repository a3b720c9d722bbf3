"""Contrast of the widgets' colours in JupyterLab's light and dark themes, computed from the CSS
the widgets ship and the ``--jp-*`` values of the installed JupyterLab themes (no browser: the
browser tests check the rendered result)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

jupyterlab = pytest.importorskip("jupyterlab")

from atdata_lab.widgets._base import read_asset  # noqa: E402

THEMES = Path(jupyterlab.__file__).parent / "themes" / "@jupyterlab"


def theme_vars(name: str) -> dict[str, str]:
    css = (THEMES / f"theme-{name}-extension" / "index.css").read_text()
    return {m[1]: m[2].strip() for m in re.finditer(r"(--[\w-]+)\s*:\s*([^;{}]+)", css)}


def parse_colour(text: str) -> tuple[float, float, float, float]:
    text = text.strip().lower()
    if text == "white":
        return (255, 255, 255, 1.0)
    if text == "black":
        return (0, 0, 0, 1.0)
    m = re.fullmatch(r"#([0-9a-f]{6})", text)
    if m:
        h = m[1]
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 1.0)
    m = re.fullmatch(r"#([0-9a-f]{3})", text)
    if m:
        return tuple(int(c * 2, 16) for c in m[1]) + (1.0,)  # type: ignore[return-value]
    m = re.fullmatch(r"rgba?\(([^)]*)\)", text)
    if m:
        parts = [float(p) for p in m[1].split(",")]
        return (parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else 1.0)
    raise ValueError(f"not a colour: {text!r}")


def resolve(value: str, theme: dict[str, str]) -> tuple[float, float, float, float]:
    """A CSS colour value with ``var()`` (theme value, else fallback) and ``color-mix(in srgb, …)``."""
    value = value.strip()
    m = re.fullmatch(r"var\((--[\w-]+)\s*(?:,\s*(.*))?\)", value)
    if m:
        if m[1] in theme:
            return resolve(theme[m[1]], theme)
        assert m[2], f"{m[1]} is not a theme variable and has no fallback"
        return resolve(m[2], theme)
    m = re.fullmatch(r"color-mix\(in srgb,\s*(.*)\)", value)
    if m:
        a, b = split_args(m[1])
        a_col, a_pct = a.rsplit(" ", 1)
        p = float(a_pct.rstrip("%")) / 100
        ca, cb = resolve(a_col, theme), resolve(b, theme)
        return tuple(p * x + (1 - p) * y for x, y in zip(ca, cb))  # type: ignore[return-value]
    return parse_colour(value)


def split_args(text: str) -> list[str]:
    depth, out, cur = 0, [], ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return out


def over(fg: tuple[float, ...], bg: tuple[float, ...]) -> tuple[float, float, float]:
    a = fg[3]
    return tuple(a * f + (1 - a) * b for f, b in zip(fg[:3], bg[:3]))  # type: ignore[return-value]


def luminance(rgb: tuple[float, ...]) -> float:
    def ch(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (ch(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def declaration(css: str, selector: str, prop: str) -> str:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    for m in re.finditer(r"([^{}]+)\{([^}]*)\}", css):
        selectors = [s.strip() for s in m[1].split(",")]
        if selector in selectors:
            for d in m[2].split(";"):
                if ":" in d:
                    k, v = d.split(":", 1)
                    if k.strip() == prop:
                        return v.strip()
    raise AssertionError(f"no {prop} for {selector}")


@pytest.mark.parametrize("theme_name", ["light", "dark"])
def test_selected_rows_have_at_least_4_5_to_1_contrast(theme_name: str) -> None:
    theme = theme_vars(theme_name)
    css = read_asset("atdata.css")
    sel = "table.atdata-table tr.atdata-selected"
    page = resolve("var(--jp-layout-color1)", theme)
    bg = over(resolve(declaration(css, sel, "background"), theme), page)
    fg = over(resolve(declaration(css, sel, "color"), theme), bg)
    assert contrast(fg, bg) >= 4.5, (theme_name, fg, bg)
    # the brand colour still marks the row: it differs from the page
    assert contrast(bg, page) > 1.1


@pytest.mark.parametrize("theme_name", ["light", "dark"])
def test_line_plot_ticks_have_at_least_4_5_to_1_contrast(theme_name: str) -> None:
    from PIL import Image

    from atdata_lab.views import PLOT_INK, line_png

    png = line_png(np.sin(np.linspace(0, 6, 200)))
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    assert img[0, 0, 3] == 0, "the plot's background is transparent (the theme's shows through)"
    ink = parse_colour(PLOT_INK)
    # ticks, tick labels and spines are drawn in PLOT_INK: the most common drawn colour (the line is
    # the only other one)
    drawn = img[img[:, :, 3] > 0][:, :3]
    colours, counts = np.unique(drawn, axis=0, return_counts=True)
    assert tuple(int(c) for c in colours[counts.argmax()]) == ink[:3]
    theme = theme_vars(theme_name)
    bg = resolve("var(--jp-layout-color1)", theme)
    css = read_asset("sample_inspector.css")
    inverted = "body[data-jp-theme-light='false'] .atdata-sample-inspector-plot"
    assert "invert(1)" in declaration(css, inverted, "filter")
    assert declaration(css, ".atdata-sample-inspector-image.atdata-sample-inspector-plot", "background") == (
        "transparent"
    )
    if theme_name == "dark":  # the filter inverts the ink; the page behind stays the theme's
        ink = (255 - ink[0], 255 - ink[1], 255 - ink[2], 1.0)
    assert contrast(ink, bg) >= 4.5, (theme_name, ink, bg)


def test_dark_theme_marks_itself_on_the_body() -> None:
    """The dark-theme rule keys on ``body[data-jp-theme-light='false']``: JupyterLab sets it."""
    js = "\n".join(
        p.read_text(errors="ignore")
        for p in (Path(jupyterlab.__file__).parent / "static").glob("*.js")
        if "jpThemeLight" in p.read_text(errors="ignore")
    )
    assert "jpThemeLight" in js
