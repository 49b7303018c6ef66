"""Inline SVG charts drawn on the server: pure functions from numbers to markup.

Every chart is a self-contained `<svg>` with a `viewBox` (it scales with its container), a
`role="img"` and an `aria-label`, and a `<title>` per mark so values show on hover and reach
screen readers. Inputs are plain sequences; non-finite values are skipped, empty input gives a
short "no data" figure instead of an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from typing import cast

from markupsafe import Markup

WIDTH, HEIGHT = 640, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 36
PALETTE = ("#1f5fa8", "#c2410c", "#15803d", "#7c3aed")
MARKER = "#b42318"  # the score threshold on the evaluation's charts


SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))  # from 1e4 up; 1e15 and more: scientific


def number(value: float) -> str:
    """A short human label: integers below 10,000 as such, else 3 significant digits, with
    k/M/G/T suffixes from 10,000 up to 1e15, and beyond that or below 0.001 a power of ten
    ("1.8e308", "-2e-7")."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e4:
        return str(int(value))
    rounded = float(f"{value:.3g}")  # its size after rounding: 999,999 reads 1M, not 1e+03k
    magnitude = abs(rounded)
    if magnitude >= 1e15 or 0 < magnitude < 1e-3:  # (1.8e308, rounded from the largest float, is inf)
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    for size, suffix in SUFFIXES:
        if magnitude >= max(size, 1e4):
            return f"{rounded / size:.3g}{suffix}"
    return f"{rounded:g}"


def _svg(label: str, body: str, width: int = WIDTH, height: int = HEIGHT, natural: bool = False) -> Markup:
    """The chart; `natural`: drawn at its own size in pixels (the confusion matrix, whose cells
    and labels must stay legible), where others scale to their container (down to the
    stylesheet's minimum width, below which their figure scrolls)."""
    size = f' width="{width}" height="{height}"' if natural else ""
    return Markup(
        f'<svg class="chart{" natural" if natural else ""}" viewBox="0 0 {width} {height}"{size} role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def _empty(label: str) -> Markup:
    return _svg(label, f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                       'class="muted">no data</text>', height=60)


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> tuple[float, float]:
    """Slope and offset mapping [lo, hi] onto [out_lo, out_hi] (a flat range maps to the middle)."""
    if hi == lo:
        return 0.0, (out_lo + out_hi) / 2
    slope = (out_hi - out_lo) / (hi - lo)
    return slope, out_lo - slope * lo


def histogram_svg(edges: Sequence[float], counts: Sequence[Sequence[float]] | Sequence[float],
                  label: str, series: Sequence[str] = (), marker: tuple[float, str] | None = None) -> Markup:
    """Bars over bins [edges[i], edges[i+1]); `counts` is one list, or one list per series
    (drawn side by side within each bin, with a legend naming `series`); `marker`: a vertical
    line at an x value (within the edges) with its label (the score threshold)."""
    groups: list[list[float]] = ([list(cast(Sequence[float], c)) for c in counts]
                                 if counts and isinstance(counts[0], Sequence)
                                 else [list(cast(Sequence[float], counts))])
    bins = len(edges) - 1
    if bins < 1 or any(len(g) != bins for g in groups):
        return _empty(label)
    top = max((max(_finite(g), default=0.0) for g in groups), default=0.0) or 1.0
    x0, x1 = PAD_LEFT, WIDTH - PAD_RIGHT
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP
    step = (x1 - x0) / bins
    width = step / len(groups)
    parts: list[str] = [_axes(x0, x1, y0, y1, 0.0, top)]
    for g, values in enumerate(groups):
        name = series[g] if g < len(series) else ""
        for i, value in enumerate(values):
            v = float(value) if value is not None and math.isfinite(float(value)) else 0.0
            h = (y0 - y1) * v / top
            end = "]" if i == bins - 1 else ")"  # the last bin holds its upper edge (np.histogram's)
            tip = f"{name + ': ' if name else ''}[{number(edges[i])}, {number(edges[i + 1])}{end}: {number(v)}"
            parts.append(
                f'<rect x="{x0 + i * step + g * width:.2f}" y="{y0 - h:.2f}" width="{max(width - 1, 0.5):.2f}" '
                f'height="{h:.2f}" fill="{PALETTE[g % len(PALETTE)]}"><title>{escape(tip)}</title></rect>'
            )
    for i, anchor in ((0, "middle"), (bins // 2, "middle"), (bins, "end")):  # the last ends at the plot's edge
        parts.append(f'<text x="{x0 + i * step:.2f}" y="{y0 + 16}" text-anchor="{anchor}">'
                     f"{escape(number(edges[i]))}</text>")
    if marker is not None and edges[0] <= marker[0] <= edges[-1] and edges[-1] > edges[0]:
        x = x0 + (x1 - x0) * (marker[0] - edges[0]) / (edges[-1] - edges[0])
        parts.append(_marker_line(x, y0, y1, marker[1]))
    parts.append(_legend(series))
    return _svg(label, "".join(parts))


def _marker_line(x: float, y0: float, y1: float, text: str) -> str:
    return (f'<g class="marker"><line x1="{x:.2f}" y1="{y0}" x2="{x:.2f}" y2="{y1}" stroke="{MARKER}" '
            f'stroke-width="2"/><text x="{x + 4:.2f}" y="{y1 + 10}" fill="{MARKER}">{escape(text)}</text>'
            f"<title>{escape(text)}</title></g>")


def spark_svg(values: Sequence[float], label: str) -> Markup:
    """A small bar chart without axes (a table cell's glimpse of a distribution): one bar per
    value, scaled to the largest."""
    finite = [v if math.isfinite(v) and v > 0 else 0.0 for v in values]
    if not finite:
        return Markup("")
    width, height, top = 120, 24, max(finite) or 1.0
    step = width / len(finite)
    bars = "".join(f'<rect x="{i * step:.2f}" y="{height - height * v / top:.2f}" width="{max(step - 1, 0.5):.2f}" '
                   f'height="{height * v / top:.2f}" fill="{PALETTE[0]}"/>' for i, v in enumerate(finite))
    return Markup(f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
                  f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
                  f"{bars}</svg>")


def bar_svg(labels: Sequence[str], values: Sequence[float], label: str) -> Markup:
    """Horizontal bars, one per label (category counts, top weights); negative values go left."""
    if not labels or len(labels) != len(values):
        return _empty(label)
    vals = [float(v) if v is not None and math.isfinite(float(v)) else 0.0 for v in values]
    row = 22
    height = PAD_TOP + row * len(vals) + 8
    lo, hi = min(0.0, *vals), max(0.0, *vals)
    left, right = 170, WIDTH - 70
    slope, offset = _scale(lo, hi, left, right)
    zero = offset
    parts: list[str] = []
    for i, (name, v) in enumerate(zip(labels, vals)):
        y = PAD_TOP + i * row
        x = slope * v + offset
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(_clip(str(name), 24))}</text>'
            f'<rect x="{min(x, zero):.2f}" y="{y + 3}" width="{max(abs(x - zero), 0.5):.2f}" height="{row - 6}" '
            f'fill="{PALETTE[0] if v >= 0 else PALETTE[1]}"><title>{escape(f"{name}: {number(v)}")}</title></rect>'
            f'<text x="{max(x, zero) + 4:.2f}" y="{y + 15}">{escape(number(v))}</text>'
        )
    return _svg(label, "".join(parts), height=height)


def line_svg(xs: Sequence[float], series: Sequence[Sequence[float]], label: str,
             names: Sequence[str] = (), x_label: str = "", y_label: str = "",
             diagonal: bool = False, points: bool = True, unit: bool = False,
             marker: tuple[float, float, str] | None = None, log: bool = False,
             interactive: bool = True) -> Markup:
    """One polyline per series over shared x values (loss per pass, ROC, precision-recall).
    unit: both axes span [0, 1] (rates), as they do with `diagonal` (the chance line of a ROC
    curve); marker: one point (x, y) ringed and labelled (the score threshold's); log: the y
    axis is logarithmic (a loss that falls by orders of magnitude; values <= 0 are left out).
    interactive: the data also go along as JSON, which static/interactive.js draws with uPlot
    (values under the pointer, drag to zoom) in place of the SVG, kept for pages without
    scripts."""
    xs_f = [float(x) for x in xs]
    curves = [[float(v) if v is not None else math.nan for v in s] for s in series]
    if log:
        curves = [[math.log10(v) if v > 0 else math.nan for v in s] for s in curves]
    ys = [v for s in curves for v in s if math.isfinite(v)]
    if not xs_f or not ys or any(len(s) != len(xs_f) for s in curves):
        return _empty(label)
    x0, x1 = PAD_LEFT, WIDTH - PAD_RIGHT
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP
    unit = unit or diagonal
    lo, hi = (0.0, 1.0) if unit else (min(ys), max(ys))
    x_lo, x_hi = (0.0, 1.0) if unit else (min(xs_f), max(xs_f))
    sx, ox = _scale(x_lo, x_hi, x0, x1)
    sy, oy = _scale(lo, hi, y0, y1)
    parts = [_axes(x0, x1, y0, y1, 10 ** lo if log else lo, 10 ** hi if log else hi)]
    if log:
        parts.append(f'<text x="{x0 + 4}" y="{y1 + 8}" class="muted">log scale</text>')
    if diagonal:
        parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" class="guide"/>')
    for k, curve in enumerate(curves):
        colour = PALETTE[k % len(PALETTE)]
        coords = [(sx * x + ox, sy * y + oy) for x, y in zip(xs_f, curve) if math.isfinite(y)]
        path = " ".join(f"{x:.2f},{y:.2f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if points and len(coords) <= 60:
            shown = [(x, 10 ** y if log else y) for x, y in zip(xs_f, curve) if math.isfinite(y)]
            for (px, py), (x, y) in zip(coords, shown):
                parts.append(f'<circle cx="{px:.2f}" cy="{py:.2f}" r="3" fill="{colour}">'
                             f"<title>{escape(f'{number(x)}: {number(y)}')}</title></circle>")
    if marker is not None and all(math.isfinite(v) for v in marker[:2]):
        mx, my = sx * marker[0] + ox, sy * marker[1] + oy
        parts.append(f'<g class="marker"><circle cx="{mx:.2f}" cy="{my:.2f}" r="6" fill="none" stroke="{MARKER}" '
                     f'stroke-width="2"/><text x="{mx + 8:.2f}" y="{my - 8:.2f}" fill="{MARKER}">'
                     f"{escape(marker[2])}</text><title>{escape(marker[2])}</title></g>")
    parts.append(_x_ends_and_labels(x0, x1, y0, y1, x_lo, x_hi, x_label, y_label))
    parts.append(_legend(names))
    drawn = _svg(label, "".join(parts))
    if not interactive:
        return drawn
    finite_marker = marker is not None and all(math.isfinite(v) for v in marker[:2])
    data = {"label": label, "x": [x if math.isfinite(x) else None for x in xs_f],
            "series": [[(10 ** v if log else v) if math.isfinite(v) else None for v in c] for c in curves],
            "names": list(names) or [y_label or "value"], "x_label": x_label, "y_label": y_label, "log": log,
            "unit": unit, "marker": list(marker) if marker is not None and finite_marker else None}
    payload = json.dumps(data, allow_nan=False).replace("<", "\\u003c")
    return drawn + Markup(f'<script type="application/json" class="chart-data">{payload}</script>')


def scatter_svg(xs: Sequence[float], ys: Sequence[float], label: str, x_label: str = "",
                y_label: str = "") -> Markup:
    """One dot per (x, y) pair on shared scales, with the line y = x (predicted against actual:
    a perfect model's dots lie on it)."""
    pairs = [(float(x), float(y)) for x, y in zip(xs, ys) if math.isfinite(float(x)) and math.isfinite(float(y))]
    if not pairs:
        return _empty(label)
    x0, x1 = PAD_LEFT, WIDTH - PAD_RIGHT
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP
    lo = min(min(x for x, _ in pairs), min(y for _, y in pairs))
    hi = max(max(x for x, _ in pairs), max(y for _, y in pairs))
    sx, ox = _scale(lo, hi, x0, x1)
    sy, oy = _scale(lo, hi, y0, y1)
    parts = [_axes(x0, x1, y0, y1, lo, hi),
             f'<line x1="{sx * lo + ox:.2f}" y1="{sy * lo + oy:.2f}" x2="{sx * hi + ox:.2f}" y2="{sy * hi + oy:.2f}" '
             'class="guide"><title>y = x</title></line>']
    parts += [f'<circle cx="{sx * x + ox:.2f}" cy="{sy * y + oy:.2f}" r="2.5" fill="{PALETTE[0]}" fill-opacity="0.5"/>'
              for x, y in pairs]
    parts.append(_x_ends_and_labels(x0, x1, y0, y1, lo, hi, x_label, y_label))
    return _svg(label, "".join(parts))


def heatmap_svg(matrix: Sequence[Sequence[float]], rows: Sequence[str], columns: Sequence[str],
                label: str, row_shares: bool = True) -> Markup:
    """A colour-scaled matrix (confusion matrix): each cell shows its count and, with
    `row_shares`, its share of the row; colour intensity follows the share (or the count)."""
    n, m = len(rows), len(columns)
    if n == 0 or m == 0 or len(matrix) != n or any(len(r) != m for r in matrix):
        return _empty(label)
    cell = max(26, min(56, 560 // max(n, m)))
    left, top = 70, 40
    width, height = left + cell * m + 8, top + cell * n + 8
    biggest = max((float(v) for r in matrix for v in r), default=0.0) or 1.0
    parts = [f'<text x="{left + cell * m / 2}" y="12" text-anchor="middle">predicted</text>']
    for j, name in enumerate(_labels(columns, 6)):
        parts.append(f'<text x="{left + j * cell + cell / 2}" y="{top - 8}" text-anchor="middle">'
                     f"{escape(name)}</text>")
    for i, name in enumerate(_labels(rows, 10)):
        total = sum(float(v) for v in matrix[i]) or 1.0
        parts.append(f'<text x="{left - 6}" y="{top + i * cell + cell / 2 + 4}" text-anchor="end">'
                     f"{escape(name)}</text>")
        for j, raw in enumerate(matrix[i]):
            v = float(raw)
            share = v / total if row_shares else v / biggest
            fill = _blend(share, diagonal=i == j)
            ink = "#fff" if share > 0.55 else "#111"
            text = f"{share * 100:.0f}%" if row_shares else number(v)
            tip = f"true {rows[i]}, predicted {columns[j]}: {number(v)} ({share * 100:.1f}% of row)"
            x, y = left + j * cell, top + i * cell
            parts.append(
                f'<g><rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{fill}"/>'
                f'<text x="{x + cell / 2}" y="{y + cell / 2 - (2 if cell >= 40 else -4)}" text-anchor="middle" '
                f'fill="{ink}" font-size="{10 if cell < 40 else 12}">{escape(text if cell >= 40 else number(v))}</text>'
                + (f'<text x="{x + cell / 2}" y="{y + cell / 2 + 12}" text-anchor="middle" fill="{ink}" '
                   f'font-size="10">{escape(number(v))}</text>' if cell >= 40 and row_shares else "")
                + f"<title>{escape(tip)}</title></g>"
            )
    return _svg(label, "".join(parts), width=width, height=height, natural=True)


def _x_ends_and_labels(x0: float, x1: float, y0: float, y1: float, x_lo: float, x_hi: float,
                       x_label: str, y_label: str) -> str:
    """The x axis's end values under it, and the axes' titles."""
    parts = [f'<text x="{x0}" y="{y0 + 16}" text-anchor="middle">{escape(number(x_lo))}</text>'
             f'<text x="{x1}" y="{y0 + 16}" text-anchor="end">{escape(number(x_hi))}</text>']
    if x_label:
        parts.append(f'<text x="{(x0 + x1) / 2}" y="{HEIGHT - 4}" text-anchor="middle">{escape(x_label)}</text>')
    if y_label:
        parts.append(f'<text x="12" y="{(y0 + y1) / 2}" text-anchor="middle" '
                     f'transform="rotate(-90 12 {(y0 + y1) / 2})">{escape(y_label)}</text>')
    return "".join(parts)


def _blend(share: float, diagonal: bool) -> str:
    """White to blue (correct) or white to orange (errors), by share in [0, 1]."""
    share = min(max(share, 0.0), 1.0)
    target = (31, 95, 168) if diagonal else (194, 65, 12)
    r, g, b = (round(255 + (t - 255) * share) for t in target)
    return f"#{r:02x}{g:02x}{b:02x}"


def _axes(x0: float, x1: float, y0: float, y1: float, lo: float, hi: float) -> str:
    return (f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" class="axis"/>'
            f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" class="axis"/>'
            f'<text x="{x0 - 4}" y="{y0}" text-anchor="end">{escape(number(lo))}</text>'
            f'<text x="{x0 - 4}" y="{y1 + 8}" text-anchor="end">{escape(number(hi))}</text>')


def _legend(names: Sequence[str]) -> str:
    if len(names) < 2:
        return ""
    return "".join(
        f'<rect x="{WIDTH - 150}" y="{PAD_TOP + 16 * k}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>'
        f'<text x="{WIDTH - 136}" y="{PAD_TOP + 9 + 16 * k}">{escape(name)}</text>'
        for k, name in enumerate(names)
    )


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _labels(names: Sequence[str], size: int) -> list[str]:
    """Names cut to `size` characters, told apart: by their ends when their beginnings are
    alike (class_0 ... class_11 all began "class…")."""
    heads = [_clip(str(name), size) for name in names]
    if len(set(heads)) == len(heads):
        return heads
    tails = [str(name) if len(str(name)) <= size else "…" + str(name)[1 - size:] for name in names]
    return tails if len(set(tails)) == len(tails) else heads
