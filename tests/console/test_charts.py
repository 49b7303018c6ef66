"""Inline SVG charts: well-formed, scaled to their data, labelled."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from openaml.console import charts

NS = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    """The chart's SVG (without the JSON data an interactive line chart carries after it)."""
    return ET.fromstring(str(markup).split('<script type="application/json"', 1)[0])


def test_histogram_bar_heights_are_proportional_to_counts() -> None:
    svg = parse(charts.histogram_svg([0, 1, 2, 3], [2, 4, 1], "h"))
    assert svg.get("role") == "img" and svg.get("aria-label") == "h"
    heights = [float(r.get("height")) for r in svg.iter(f"{NS}rect")]
    assert len(heights) == 3
    full = charts.HEIGHT - charts.PAD_BOTTOM - charts.PAD_TOP
    assert heights == [full / 2, full, full / 4]
    titles = [t.text for r in svg.iter(f"{NS}rect") for t in r.iter(f"{NS}title")]
    assert titles[1] == "[1, 2): 4"
    assert titles[2] == "[2, 3]: 1"  # the last bin holds its upper edge (it read "[2, 3)", found by an outside test)


def test_histogram_with_two_series_has_legend_and_side_by_side_bars() -> None:
    svg = parse(charts.histogram_svg([0, 0.5, 1], [[1, 3], [2, 0]], "s", series=("pos", "neg")))
    rects = list(svg.iter(f"{NS}rect"))
    assert len(rects) == 4 + 2  # 2 bins x 2 series + 2 legend swatches
    xs = [float(r.get("x")) for r in rects[:2]] + [float(r.get("x")) for r in rects[2:4]]
    assert xs[2] > xs[0] and xs[3] > xs[1]  # second series to the right within each bin
    assert "pos" in str(charts.histogram_svg([0, 0.5, 1], [[1, 3], [2, 0]], "s", series=("pos", "neg")))


def test_mismatched_or_empty_input_gives_no_data() -> None:
    assert "no data" in charts.histogram_svg([0, 1], [1, 2], "x")
    assert "no data" in charts.line_svg([], [[]], "x")
    assert "no data" in charts.bar_svg([], [], "x")
    assert "no data" in charts.heatmap_svg([[1]], ["a", "b"], ["a"], "x")


def test_bar_negative_values_extend_left_of_zero() -> None:
    svg = parse(charts.bar_svg(["a", "b"], [2.0, -1.0], "w"))
    rects = list(svg.iter(f"{NS}rect"))
    a, b = rects
    assert abs(float(a.get("x")) - float(b.get("x")) - float(b.get("width"))) < 0.02  # both touch zero
    assert abs(float(a.get("width")) - 2 * float(b.get("width"))) < 0.02


def test_line_maps_extremes_to_plot_corners() -> None:
    svg = parse(charts.line_svg([1, 2, 3], [[3.0, 2.0, 1.0]], "loss"))
    points = svg.find(f"{NS}polyline").get("points").split()
    first, last = (tuple(map(float, p.split(","))) for p in (points[0], points[-1]))
    assert first == (charts.PAD_LEFT, charts.PAD_TOP)
    assert last == (charts.WIDTH - charts.PAD_RIGHT, charts.HEIGHT - charts.PAD_BOTTOM)


def test_heatmap_shows_row_shares_and_counts() -> None:
    markup = str(charts.heatmap_svg([[3, 1], [0, 4]], ["a", "b"], ["a", "b"], "cm"))
    parse(markup)
    assert "75%" in markup and "25%" in markup and "100%" in markup
    assert "true a, predicted b: 1 (25.0% of row)" in markup
    fills = re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"', markup)
    assert fills[3] == "#1f5fa8"  # a full row share on the diagonal: the full colour
    assert fills[2] == "#ffffff"  # an empty cell stays white


def test_labels_are_escaped() -> None:
    markup = str(charts.bar_svg(["<b>&"], [1], "a<b"))
    parse(markup)
    assert "<b>&" not in markup


def test_number_labels() -> None:
    assert charts.number(3.0) == "3"
    assert charts.number(0.12345) == "0.123"
    assert charts.number(25000) == "25k"
    assert charts.number(2_500_000) == "2.5M"


def test_a_log_scale_line_shows_its_values_and_leaves_out_what_it_cannot_draw() -> None:
    svg = str(charts.line_svg([1, 2, 3, 4], [[1.0, 0.1, 0.0, 0.01]], "Training loss per pass", log=True))
    assert "log scale" in svg
    assert ">1</text>" in svg and ">0.01</text>" in svg  # the axis in the values' own units
    assert "<title>4: 0.01</title>" in svg and "<title>3:" not in svg  # 0 has no logarithm
    assert svg.count("<circle") == 3


def test_a_scatter_has_a_dot_per_pair_and_the_line_y_equals_x() -> None:
    svg = str(charts.scatter_svg([1, 2, 3, float("nan")], [1.5, 1.8, 3.2, 1.0], "Predicted against actual values"))
    assert svg.count("<circle") == 3 and "y = x" in svg
    assert "no data" in str(charts.scatter_svg([], [], "empty"))


def test_a_line_chart_carries_its_data_for_the_interactive_chart() -> None:
    """The values the SVG draws go along as JSON (interactive.js draws them with uPlot), in
    their own units on a log scale, missing ones as null, and nothing a page could run."""
    import json

    markup = str(charts.line_svg([1, 2, 3], [[1.0, float("nan"), 0.01]], "Loss </script><b>", log=True,
                                 marker=(2.0, 0.5, "threshold 0.5")))
    block = markup.split('<script type="application/json" class="chart-data">', 1)[1].rsplit("</script>", 1)[0]
    assert "</script>" not in block and "<b>" not in block
    data = json.loads(block)
    assert data["x"] == [1, 2, 3] and data["series"][0][1] is None and data["log"] is True
    assert abs(data["series"][0][2] - 0.01) < 1e-12 and data["marker"] == [2.0, 0.5, "threshold 0.5"]
    assert "chart-data" not in str(charts.line_svg([1, 2], [[1.0, 2.0]], "still", interactive=False))


def test_a_heatmaps_labels_are_told_apart_when_their_beginnings_are_alike() -> None:
    """class_0 ... class_11 were all clipped to "class…": the columns could not be read."""
    classes = [f"class_{i}" for i in range(12)]
    svg = str(charts.heatmap_svg([[1] * 12 for _ in classes], classes, classes, "Confusion matrix"))
    column_labels = re.findall(r'text-anchor="middle">([^<]*)</text>', svg)[1:13]
    assert len(set(column_labels)) == 12 and "…ss_11" in column_labels and "…ass_0" in column_labels
    short = str(charts.heatmap_svg([[1, 0], [0, 1]], ["red", "green"], ["red", "green"], "m"))
    assert ">red<" in short and ">green<" in short


@pytest.mark.parametrize(("value", "label"), [
    (1e9, "1G"), (1.7e9, "1.7G"), (1.7e12, "1.7T"), (999_999, "1M"), (-2.5e6, "-2.5M"), (1e15, "1e15"),
    (-1e302, "-1e302"), (3.5e301, "3.5e301"), (1.7976931348623157e308, "1.8e308"),
    (-1.7976931348623157e308, "-1.8e308"), (1e-7, "1e-7"), (9999, "9999"), (0.5, "0.5"),
])
def test_number_labels_read_right_at_any_magnitude(value: float, label: str) -> None:
    """F10: values of 1e9 and more read "1.7e+06M" and "-1e+302M"."""
    assert charts.number(value) == label


def test_the_last_tick_of_a_histogram_ends_inside_the_chart() -> None:
    """F10: the last x tick was centred on the plot's right edge, its second half cut off."""
    root = parse(str(charts.histogram_svg([-1.7e308, 0.0, 1.7e308], [3, 4], "big")))
    ticks = [t for t in root.iter(f"{NS}text") if t.get("y") == str(charts.HEIGHT - charts.PAD_BOTTOM + 16)]
    assert [t.text for t in ticks] == ["-1.7e308", "0", "1.7e308"]
    assert ticks[-1].get("text-anchor") == "end" and float(ticks[-1].get("x")) <= charts.WIDTH
