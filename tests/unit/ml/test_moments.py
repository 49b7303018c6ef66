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
