import numpy as np
import pytest

from openaml.ml.moments import Moments


def test_merged_moments_are_those_of_all_the_numbers():
    """Parts merged in any grouping give the mean and population variance of all the numbers
    (NaN left out), far from zero too; none give zeros."""
    rng = np.random.default_rng(3)
    parts = [rng.normal(1e9, 2.0, size) for size in (1, 7, 0, 300)]
    parts[2] = np.array([np.nan])
    merged = Moments()
    for part in parts:
        merged.merge(Moments.of(part))
    every = np.concatenate(parts)
    every = every[~np.isnan(every)]
    assert merged.count == len(every)
    assert merged.mean == pytest.approx(every.mean(), rel=1e-15)
    # numbers near 1e9 hold their spread of 2 to about 1e-7: so does any variance of them
    assert merged.variance == pytest.approx(every.var(), rel=1e-6)
    assert merged.std == pytest.approx(every.std(), rel=1e-6)
    assert (Moments().mean, Moments().variance, Moments.of(np.array([np.nan])).count) == (0.0, 0.0, 0)


def _plain_merge(parts):
    """Chan's merge as written before moments were scaled: the reference below their range."""
    count, mean, m2 = 0, 0.0, 0.0
    for part in parts:
        if len(part):
            n, part_mean = len(part), float(part.mean())
            part_m2 = float(((part - part_mean) ** 2).sum())
            total = count + n
            delta = part_mean - mean
            m2 += part_m2 + delta * delta * count * n / total
            mean += delta * n / total
            count = total
    return count, mean, m2


@pytest.mark.parametrize("magnitude", [1e-300, 1.0, 1e100, 1e140])
def test_moments_below_their_scaled_range_are_the_plain_formulas_bit_for_bit(magnitude):
    rng = np.random.default_rng(5)
    parts = [rng.normal(3.0, 1.0, size) * magnitude for size in (5, 1, 40, 0, 17)]
    merged = Moments()
    for part in parts:
        merged.merge(Moments.of(part))
    count, mean, m2 = _plain_merge(parts)
    assert (merged.count, merged.mean, merged.variance, merged.scale) == (count, mean, m2 / count, 1.0)
    weighted = Moments.of(np.array([1.0, 2.0, 4.0]) * magnitude, np.array([2.0, 1.0, 3.0]))
    values = np.array([1.0, 1.0, 2.0, 4.0, 4.0, 4.0]) * magnitude
    assert weighted.count == 6 and weighted.mean == pytest.approx(values.mean(), rel=1e-15)
    assert weighted.std == pytest.approx(values.std(), rel=1e-12)


@pytest.mark.parametrize("magnitude", [1e150, 1e200, 1e300, 1.7976931348623157e308])
def test_numbers_near_the_doubles_range_have_a_finite_standard_deviation(magnitude):
    """Their squared deviations (and the sums behind their mean) pass the double's range, but
    their mean and standard deviation do not: merged in any grouping, those are numpy's of the
    numbers divided by a power of two, times it; no warning is raised (as errors, they failed
    statistics and training)."""
    import warnings

    rng = np.random.default_rng(11)
    values = np.clip(rng.normal(0.3, 1.0, 900), -1.0, 1.0) * magnitude
    unit = 2.0**1023 if magnitude > 1e300 else 2.0 ** np.ceil(np.log2(magnitude))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cuts in ([], [450], [1, 2, 300, 899], list(range(0, 900, 7))):
            merged = Moments()
            for part in np.split(values, cuts):
                merged.merge(Moments.of(part))
            assert merged.count == 900
            assert merged.mean == pytest.approx((values / unit).mean() * unit, rel=1e-12)
            assert merged.std == pytest.approx((values / unit).std() * unit, rel=1e-9)
            assert merged.variance == pytest.approx(merged.std * merged.std, rel=1e-9)  # inf past the range
        # parts far apart: each part's deviations fit, their merged ones would not
        apart = Moments.of(np.full(1000, magnitude / 2))
        apart.merge(Moments.of(np.full(1000, -magnitude / 2)))
        assert apart.mean == 0.0 and apart.std == pytest.approx(magnitude / 2, rel=1e-12)


def test_standardizing_near_the_doubles_range_takes_the_mean_apart():
    """Below SAFE_MAGNITUDE the plain formulas, bit for bit; past it, values at both ends of
    the range standardize and come back within it (the plain difference with the mean, and
    z * std + mean, overflowed)."""
    from openaml.ml.moments import standardize, unstandardize

    values = np.array([-3.5, 0.0, 2.25, 1e10])
    assert np.array_equal(standardize(values, 1.5, 2.0), (values - 1.5) / 2.0)
    assert np.array_equal(unstandardize(values, 1.5, 2.0), values * 2.0 + 1.5)
    big = 1.7e308
    extremes = np.array([-big, -big, -big, big])
    moments = Moments.of(extremes)
    z = standardize(extremes, moments.mean, moments.std)
    assert z == pytest.approx([-1 / 3**0.5] * 3 + [3**0.5], rel=1e-12)
    assert unstandardize(z, moments.mean, moments.std) == pytest.approx(extremes, rel=1e-12)
