"""Each distribution against its law: moments and a Kolmogorov-Smirnov or chi-squared test, at
the fixed seeds written here, at the 1% level (the critical values below)."""

import math

import numpy as np
import pytest

import exprc as ex

N = 20_000
#: Kolmogorov-Smirnov's critical value at the 1% level, for large samples.
KS_CRITICAL = 1.628 / math.sqrt(N)


def _sample(make, seed):
    srng = ex.random.RandomStream(seed=seed)
    return np.asarray(ex.function([], make(srng), updates=srng.updates(), backend="numpy")())


def _ks(sample, cdf):
    x = np.sort(sample.astype(np.float64).ravel())
    f = cdf(x)
    n = len(x)
    return max((np.arange(1, n + 1) / n - f).max(), (f - np.arange(n) / n).max())


def _chi2_critical(dof, z=2.3263):
    """The 1% point of chi-squared with ``dof`` degrees of freedom (Wilson-Hilferty)."""
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


def _chi2(counts, probabilities):
    expected = counts.sum() * np.asarray(probabilities)
    keep = expected >= 5  # pool the sparse tail into one cell
    observed = np.append(counts[keep], counts[~keep].sum())
    expected = np.append(expected[keep], expected[~keep].sum())
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    return ((observed - expected) ** 2 / expected).sum(), len(observed) - 1


_normal_cdf = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))))


@pytest.mark.parametrize("dtype, seed", [("float32", 11), ("float64", 12)])
def test_uniform(dtype, seed):
    x = _sample(lambda s: s.uniform(-2.0, 3.0, size=(N,), dtype=dtype), seed)
    assert x.dtype == dtype and x.min() >= -2.0 and x.max() < 3.0
    assert abs(x.mean() - 0.5) < 4 * 5 / math.sqrt(12 * N)
    assert _ks(x, lambda v: (v + 2) / 5) < KS_CRITICAL


@pytest.mark.parametrize("dtype, seed", [("float32", 21), ("float64", 22)])
def test_normal(dtype, seed):
    x = _sample(lambda s: s.normal(1.0, 2.0, size=(N,), dtype=dtype), seed)
    assert x.dtype == dtype
    assert abs(x.mean() - 1.0) < 4 * 2 / math.sqrt(N)
    assert abs(x.var() - 4.0) < 4 * 4 * math.sqrt(2 / N)
    assert _ks(x, lambda v: _normal_cdf((v - 1.0) / 2.0)) < KS_CRITICAL


def test_truncated_normal():
    x = _sample(lambda s: s.truncated_normal(0.0, 1.0, size=(N,)), 31)
    assert np.abs(x).max() < 2.0
    mass = _normal_cdf(2.0) - _normal_cdf(-2.0)
    assert _ks(x, lambda v: (_normal_cdf(v) - _normal_cdf(-2.0)) / mass) < KS_CRITICAL


def test_bernoulli():
    x = _sample(lambda s: s.bernoulli(0.3, size=(N,)), 41)
    assert x.dtype == np.bool_
    assert abs(x.mean() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / N)


@pytest.mark.parametrize("n, p, seed", [(20, 0.3, 51), (1500, 0.7, 52), (7, 0.0, 53), (7, 1.0, 54)])
def test_binomial(n, p, seed):
    x = _sample(lambda s: s.binomial(n, p, size=(N,)), seed)
    assert x.dtype == np.int64 and x.min() >= 0 and x.max() <= n
    if p in (0.0, 1.0):
        assert (x == n * p).all()
        return
    log_pmf = [
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)
        for k in range(n + 1)
    ]
    pmf = np.exp(log_pmf)
    stat, dof = _chi2(np.bincount(x, minlength=n + 1), pmf)
    assert stat < _chi2_critical(dof)
    assert abs(x.mean() - n * p) < 4 * math.sqrt(n * p * (1 - p) / N)


def test_integers():
    x = _sample(lambda s: s.integers(-3, 7, size=(N,)), 61)
    assert x.min() == -3 and x.max() == 6
    stat, dof = _chi2(np.bincount(x + 3, minlength=10), np.full(10, 0.1))
    assert stat < _chi2_critical(dof)


def test_choice_with_probabilities():
    p = [0.1, 0.2, 0.3, 0.4]
    x = _sample(lambda s: s.choice(4, size=(N,), p=p), 71)
    stat, dof = _chi2(np.bincount(x, minlength=4), p)
    assert stat < _chi2_critical(dof)


def test_choice_of_an_array_without_replacement_takes_distinct_elements():
    values = np.arange(10.0, 20.0)
    x = _sample(lambda s: s.choice(values, size=(6,), replace=False), 72)
    assert len(set(x.tolist())) == 6 and set(x.tolist()) <= set(values.tolist())


def test_permutation_puts_each_element_first_equally_often():
    srng = ex.random.RandomStream(seed=81)
    f = ex.function([], srng.permutation(5), updates=srng.updates(), backend="numpy")
    firsts = []
    for _ in range(1000):
        order = f()
        assert sorted(order.tolist()) == list(range(5))
        firsts.append(order[0])
    stat, dof = _chi2(np.bincount(firsts, minlength=5), np.full(5, 0.2))
    assert stat < _chi2_critical(dof)


def test_multinomial():
    pvals = [0.2, 0.5, 0.3]
    x = _sample(lambda s: s.multinomial(30, pvals, size=(500,)), 91)
    assert x.shape == (500, 3) and (x.sum(axis=1) == 30).all()
    np.testing.assert_allclose(x.mean(axis=0), 30 * np.array(pvals), atol=4 * math.sqrt(30 * 0.25 / 500))
