from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import f1_score

from openaml.ml.metrics import auc_score, format_metric, format_score, score_texts
from openaml.ml.metrics.accumulators import BinaryAccumulator, MulticlassAccumulator, RegressionAccumulator, roc_points
from openaml.ml.model import answered, positive
from tests.unit.ml.conftest import add_labels


def test_auc_counts_pairs_with_ties():
    scores = np.array([0.9, 0.5, 0.5, 0.1, 0.5])
    labels = np.array([1, 1, 0, 0, 0])
    # pairs (pos, neg): 0.9 beats all 3; 0.5 beats 0.1, ties two 0.5s -> 1 + 0.5 + 0.5
    assert auc_score(scores, labels) == (3 + 2) / 6
    assert auc_score(np.array([0.3, 0.4]), np.array([1, 1])) == 0.5


def test_macro_f1_by_hand():
    acc = MulticlassAccumulator()
    add_labels(acc, np.array(["a", "a", "b", "c"]), np.array(["a", "b", "b", "d"]))
    # a: P=1 R=.5 F=2/3; b: P=.5 R=1 F=2/3; c: 0; d (predicted only): 0
    assert abs(acc.metric() - (2 / 3 + 2 / 3) / 4) < 1e-12
    baseline, details = acc.report("a")
    assert details.matrix[0] == [1, 1, 0, 0]
    # always "a": a: P=.5 R=1 F=2/3; b and c: 0 (d, which only the model predicted, does not count)
    assert abs(baseline - (2 * 0.5 * 1 / 1.5) / 3) < 1e-12


@pytest.mark.parametrize("majority", ["a", "b", "z"])
def test_the_multiclass_baseline_is_the_macro_f1_of_always_predicting_the_majority(majority: str) -> None:
    """evaluation-and-prediction.md §1.4: that hypothetical model's macro F1, as scikit-learn
    computes it over the records' classes and its one prediction. It was averaged over every
    class of the real evaluation, also those only the real model predicted (0.0368 for 0.0420
    in an outside test)."""
    rng = np.random.default_rng(4)
    true = np.array(["a", "b", "c"])[rng.integers(0, 3, 300)]
    predicted = np.array(["a", "b", "c", "x", "y"])[rng.integers(0, 5, 300)]
    acc = MulticlassAccumulator()
    add_labels(acc, true, predicted)
    baseline, _ = acc.report(majority)
    assert baseline == pytest.approx(f1_score(true, np.full(300, majority), average="macro", zero_division=0))


def test_labels_given_as_codes_count_as_the_labels_do():
    """An evaluation passes each slice's labels as codes (no Python string per record): the
    confusion counts are those of the labels, whatever codes and label lists each slice has."""
    rng = np.random.default_rng(3)
    true = np.array(["a", "b", "c", "d"])[rng.integers(0, 4, 500)]
    predicted = np.array(["a", "b", "c", "e"])[rng.integers(0, 4, 500)]
    by_codes = MulticlassAccumulator()
    for part in np.array_split(np.arange(500), 3):
        true_labels, true_codes = np.unique(true[part], return_inverse=True)
        by_codes.add_coded(true_labels[::-1].tolist(), len(true_labels) - 1 - true_codes,
                           ["e", "c", "b", "a"], np.searchsorted(["a", "b", "c", "e"], predicted[part]) * -1 + 3)
    assert by_codes.counts == Counter(zip(true.tolist(), predicted.tolist())) and len(by_codes.counts) == 16


def test_rmse_and_baseline():
    acc = RegressionAccumulator()
    acc.add(np.array([1.0, 2.0]), np.array([2.0, 2.0]))
    acc.add(np.array([4.0]), np.array([2.0]))
    assert abs(acc.metric() - np.sqrt(5 / 3)) < 1e-12
    assert abs(acc.report(2.0)[0] - np.sqrt(5 / 3)) < 1e-12


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1.0])
def test_rmse_and_baseline_of_numbers_whose_squares_pass_a_doubles_range(scale):
    """Residuals near the double's range (a prediction of 1e200 for an input beyond the
    training's) or near its smallest numbers have a finite RMSE, the one of the numbers scaled
    back: their squares overflowed to an RMSE of inf, formatted "0.0E0" as if perfect, or
    underflowed to 0."""
    acc = RegressionAccumulator()
    acc.add(np.array([3.0, 0.0, -4.0]) * scale, np.zeros(3))
    expected = 5 / np.sqrt(3) * scale
    assert acc.metric() == pytest.approx(expected, rel=1e-14)
    assert acc.report(0.0)[0] == pytest.approx(expected, rel=1e-14)
    assert format_metric(acc.metric()) not in ("0.0", "0.0E0", "Infinity")


def test_the_rmse_of_ordinary_residuals_is_numpys_bit_for_bit():
    """Up to and including magnitudes of 1e140 (and down to 1e-140) nothing is scaled."""
    rng = np.random.default_rng(5)
    for top in (1e140, 1e-140, 1.0):
        r = rng.normal(size=50)
        r = r / np.abs(r).max() * top
        acc = RegressionAccumulator()
        acc.add(r, np.zeros(50))
        assert np.abs(r).max() == top and acc.metric() == float(np.sqrt(np.mean(r * r)))


def test_a_metric_that_is_not_finite_is_written_as_java_writes_it():
    """An RMSE past the largest double (predictions that overflowed) is no perfect score."""
    acc = RegressionAccumulator()
    acc.add(np.array([1.0, 2.0]), np.array([np.inf, 2.0]))
    assert acc.metric() == np.inf and format_metric(acc.metric()) == "Infinity"
    assert [format_metric(x) for x in (np.nan, -np.inf)] == ["NaN", "-Infinity"]


def test_roc_points_count_the_labels_their_thresholds_give():
    """Scores apart by less than a 32-bit float's rounding answer alike and take one label at
    any threshold: they make one ROC point, whose counts are those labels (they were two
    points, the higher one's counts one record short of the labels at its threshold)."""
    low, high = 0.5 + 1e-12, 0.5 + 2e-12  # both answered as 0.5
    scores, labels = np.array([0.9, high, low, 0.1]), np.array([1, 1, 0, 0])
    points = roc_points(scores, labels)
    assert [p[2] for p in points[1:]] == [float(np.float32(0.9)), 0.5, float(np.float32(0.1))]
    for fpr, tpr, threshold in points[1:]:
        predicted = positive(scores, threshold)
        assert (tpr * 2, fpr * 2) == (predicted[labels == 1].sum(), predicted[labels == 0].sum())


def test_roc_ends_at_one():
    points = roc_points(np.array([0.9, 0.2, 0.6]), np.array([1, 0, 0]))
    assert points[0][:2] == [0.0, 0.0] and points[-1][:2] == [1.0, 1.0]


def test_metric_format_like_java():
    assert [format_metric(x) for x in (0.22252705911460363, 29853.250469108018, 1.0, 1.2345678e7,
                                       5e-4, 0.001, 0.0)] == [
        "0.22252705911460363", "29853.250469108018", "1.0", "1.2345678E7", "5.0E-4", "0.001", "0.0"]


def test_score_format_examples_and_vectorised_agreement():
    xs = [0.0087642, 0.7899012, 0.9999157, 0.5, 1, 6.188034, -15.26385, 8.824527e-12, 0.99999996, 0]
    want = ["8.7642E-3", "7.899012E-1", "9.999157E-1", "5E-1", "1E0", "6.188034E0", "-1.526385E1",
            "8.824527E-12", "1E0", "0E0"]
    assert [format_score(x) for x in xs] == want
    assert score_texts(np.array(xs, dtype=float)).to_pylist() == want
    ties = np.array([0.12345645, 0.12345655, 1.2345625e-5])
    assert score_texts(ties).to_pylist() == [format_score(x) for x in ties]
    rng = np.random.default_rng(1).random(5000) ** 4
    assert score_texts(rng).to_pylist() == [format_score(x) for x in rng]
    draw = np.random.default_rng(2)  # 8-digit values ending in 5 (ties), both signs, any scale
    crafted = (draw.integers(1_000_000, 9_999_999, 3000) * 10 + 5) * 10.0 ** draw.integers(-40, 10, 3000)
    crafted *= draw.choice([-1, 1], 3000)
    assert score_texts(crafted).to_pylist() == [format_score(x) for x in crafted]
    subnormal = np.array([5e-324, 1e-319, 6.216828e-320, -2e-310, 2.2250738585072014e-308])
    assert score_texts(subnormal).to_pylist() == [format_score(x) for x in subnormal]
    # any scale and sign, powers of ten and their neighbours (the exponent's off-by-one), huge
    # and non-finite values
    wide = draw.random(20000) * 10.0 ** draw.integers(-320, 308, 20000) * draw.choice([-1, 1], 20000)
    tens = 10.0 ** np.arange(-300, 300)
    edges = np.concatenate([tens, np.nextafter(tens, 0), np.nextafter(tens, np.inf), tens * 0.99999995,
                            tens * 0.9999999500000001, [1e300, 1.7e308, -0.0]])
    for values in (wide, edges):
        assert score_texts(values).to_pylist() == [format_score(x) for x in values]
    assert score_texts(np.array([np.inf, -np.inf, np.nan])).to_pylist() == ["Infinity", "-Infinity", "NaN"]
    assert pa is not None


@pytest.mark.parametrize("levels", [3, 50, 100_000])
def test_auc_and_roc_points_match_scikit_learn_with_ties(levels):
    """One sort of the scores gives the exact AUC (ties half) and the ROC points at every
    distinct threshold, as scikit-learn computes them, for the metric and the report alike."""
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(levels)
    scores = rng.integers(0, levels, 3000) / levels  # few levels: many ties
    labels = (rng.random(3000) < scores * 0.6 + 0.2).astype(np.int8)
    assert auc_score(scores, labels) == pytest.approx(roc_auc_score(labels, scores), rel=1e-12)
    # the points are at the scores as Predict answers them (32-bit floats), which label records
    fpr, tpr, thresholds = roc_curve(labels, answered(scores), drop_intermediate=False)
    points = np.array(roc_points(scores, labels, limit=len(thresholds)))
    assert np.allclose(points[1:], np.column_stack([fpr, tpr, thresholds])[1:], rtol=1e-12, atol=0)
    accumulator = BinaryAccumulator()
    for part in range(3):
        accumulator.add(scores[part::3], labels[part::3])
    assert accumulator.metric() == auc_score(np.concatenate([scores[p::3] for p in range(3)]),
                                             np.concatenate([labels[p::3] for p in range(3)]))
    _, details = accumulator.report()
    assert len(details.roc) == min(202, len(thresholds)) and details.roc[-1][:2] == (1.0, 1.0)
    accumulator.add(np.array([2.0]), np.array([0], np.int8))  # a record more: sorted again
    assert accumulator.metric() < auc_score(scores, labels)


def test_residuals_beyond_a_doubles_range_still_make_a_report():
    """Extreme but valid targets: residuals overflow to infinity or span the whole range."""
    acc = RegressionAccumulator()
    acc.add(np.array([1e308, -1e308, 4.0]), np.array([-1e308, 1e308, 3.0]))  # inf, -inf, 1
    acc.add(np.array([1.7e308, -1.7e308]), np.array([0.0, 0.0]))
    baseline, details = acc.report(0.0)
    assert sum(details.counts) == 3 and len(details.edges) == len(details.counts) + 1
    assert np.all(np.isfinite(details.edges)) and all(np.isfinite(p).all() for p in details.pairs)


def test_stepped_counts_label_as_predictions_do():
    """The report's (tp, fp) at each threshold k / 100 are those of model.positive's labels,
    for ties, 32-bit float roundings up to a threshold and empty data."""
    from openaml.ml.metrics.accumulators import score_groups, stepped_counts
    from openaml.ml.model import positive

    rng = np.random.default_rng(1)
    for trial in range(120):
        n = int(rng.integers(0, 300))
        scores = [rng.random(n), np.round(rng.random(n), 2), np.full(n, 0.3 - 1e-9)][trial % 3]
        labels = (rng.random(n) < 0.4).astype(np.int8)
        counted = stepped_counts(*score_groups(scores, labels))
        assert len(counted) == 101
        for k in (0, 13, 30, 50, 99, 100):
            predicted = positive(scores, k / 100)
            assert counted[k] == (int((predicted & (labels == 1)).sum()), int((predicted & (labels == 0)).sum()))


def test_the_reports_histograms_and_counts_are_numpys_from_the_one_sort():
    """binned() of score_groups is np.histogram of the scores (ties, edges, 0 and 1 included),
    and the confusion counts are model.positive's: the report no longer sorts or bins twice."""
    from openaml.ml.metrics.accumulators import BinaryAccumulator, binned, score_groups
    from openaml.ml.model import positive

    rng = np.random.default_rng(4)
    edges = np.linspace(0.0, 1.0, 21)
    for trial in range(60):
        n = int(rng.integers(0, 400))
        scores = [rng.random(n), np.round(rng.random(n), 2), rng.choice(edges, n)][trial % 3]
        labels = (rng.random(n) < 0.3).astype(np.int8)
        values, positives, negatives = score_groups(scores, labels)
        assert binned(values, positives, edges) == np.histogram(scores[labels == 1], edges)[0].tolist()
        assert binned(values, negatives, edges) == np.histogram(scores[labels == 0], edges)[0].tolist()
        accumulator = BinaryAccumulator()
        accumulator.add(scores, labels)
        confusion = accumulator.report(0.35)[1].confusion
        predicted = positive(scores, 0.35)
        ones, zeros = labels == 1, labels == 0
        assert confusion == {"tp": int((predicted & ones).sum()), "fp": int((predicted & zeros).sum()),
                             "tn": int((~predicted & zeros).sum()), "fn": int((~predicted & ones).sum())}
