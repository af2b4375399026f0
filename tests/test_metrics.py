"""Each metric on cases with known answers, and FID / Parzen against plain independent formulas."""

import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from flax_gan import metrics


def fid_scipy(x, y):
    """The usual FID formula (scipy.linalg.sqrtm, float64), independent of ours."""
    mu1, mu2 = x.mean(0), y.mean(0)
    c1, c2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * covmean))


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    x = np.random.default_rng(0).normal(size=(2000, 16)).astype(np.float32)
    assert abs(metrics.frechet_distance(x, x)) < 1e-3
    previous = 0.0
    for shift in (0.1, 0.5, 1.0, 2.0):
        fid = metrics.frechet_distance(x, x + shift)
        # Same covariance: FID is |shift|^2 summed over the 16 dimensions.
        assert fid == pytest.approx(16 * shift**2, rel=1e-3, abs=1e-3)
        assert fid > previous
        previous = fid


def test_fid_matches_the_scipy_formula_on_different_covariances():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3000, 12)) @ rng.normal(size=(12, 12))
    b = rng.normal(size=(2500, 12)) @ rng.normal(size=(12, 12)) * 0.7 + 0.3
    ours = metrics.frechet_distance(a.astype(np.float32), b.astype(np.float32))
    assert ours == pytest.approx(fid_scipy(a, b), rel=1e-3)


def test_fid_of_rank_deficient_features_is_finite():
    # More dimensions than samples: singular covariances, where sqrtm-based code gives complex parts.
    x = np.random.default_rng(2).normal(size=(20, 64)).astype(np.float32)
    fid = metrics.frechet_distance(x, x[::-1] * 0.5)
    assert np.isfinite(fid) and fid > 0


def one_hot_logits(classes, confidence=30.0):
    return np.eye(10, dtype=np.float32)[classes] * confidence


def test_mnist_score_known_answers():
    assert metrics.mnist_score(one_hot_logits(np.full(500, 3))) == pytest.approx(1.0, abs=1e-4)
    balanced = one_hot_logits(np.arange(1000) % 10)
    assert metrics.mnist_score(balanced) == pytest.approx(10.0, rel=1e-3)
    assert metrics.mnist_score(np.zeros((100, 10), np.float32)) == pytest.approx(1.0, abs=1e-5)  # unsure: p(y|x) = p(y)
    half = one_hot_logits(np.arange(1000) % 5)  # five classes, confident
    assert metrics.mnist_score(half) == pytest.approx(5.0, rel=1e-3)


def test_class_histogram_and_rarest_share():
    logits = one_hot_logits(np.array([0] * 50 + [1] * 30 + list(range(2, 10)) * 5))
    hist = metrics.class_histogram(logits)
    assert hist.tolist() == [50, 30] + [5] * 8
    assert metrics.min_class_share(hist) == pytest.approx(5 / 120)
    assert metrics.min_class_share(metrics.class_histogram(one_hot_logits(np.arange(9)))) == 0.0


def parzen_1d(samples, x, sigma):
    """log( mean_i N(x; s_i, sigma^2) ) in closed form, float64."""
    return np.log(scipy.stats.norm.pdf(x[:, None], samples[None, :], sigma).mean(1))


def test_parzen_on_a_1d_case_against_the_closed_form():
    rng = np.random.default_rng(3)
    samples = rng.normal(size=(300, 1))
    test, valid = rng.normal(size=(200, 1)), rng.normal(size=(150, 1))
    sigmas = (0.05, 0.2, 0.5, 1.0, 2.0)
    result = metrics.parzen_log_likelihood(samples, test, valid, sigmas=sigmas, batch_size=64)
    expected_valid = [parzen_1d(samples[:, 0], valid[:, 0], s).mean() for s in sigmas]
    np.testing.assert_allclose(result.valid_means[0], expected_valid, rtol=1e-4)
    best = sigmas[int(np.argmax(expected_valid))]
    assert result.sigma == (best,)
    expected = parzen_1d(samples[:, 0], test[:, 0], best)
    assert result.mean == pytest.approx(expected.mean(), rel=1e-4)
    assert result.se == pytest.approx(expected.std() / np.sqrt(len(expected)), rel=1e-3)


def test_parzen_without_a_validation_set_cross_fits_sigma_on_the_test_halves():
    rng = np.random.default_rng(5)
    samples, test = rng.normal(size=(300, 1)), rng.normal(size=(201, 1))
    sigmas = (0.05, 0.2, 0.5, 1.0)
    result = metrics.parzen_log_likelihood(samples, test, None, sigmas=sigmas)
    even, odd = test[0::2, 0], test[1::2, 0]
    s_even = sigmas[int(np.argmax([parzen_1d(samples[:, 0], even, s).mean() for s in sigmas]))]
    s_odd = sigmas[int(np.argmax([parzen_1d(samples[:, 0], odd, s).mean() for s in sigmas]))]
    expected = np.concatenate([parzen_1d(samples[:, 0], odd, s_even), parzen_1d(samples[:, 0], even, s_odd)])
    assert result.sigma == (s_even, s_odd)
    assert result.mean == pytest.approx(expected.mean(), rel=1e-4)
    assert result.se == pytest.approx(expected.std() / np.sqrt(201), rel=1e-3)


def test_parzen_in_784_dimensions_matches_a_direct_sum_and_ignores_batching():
    rng = np.random.default_rng(4)
    samples = rng.uniform(size=(50, 28, 28, 1)).astype(np.float32)
    test = rng.uniform(size=(30, 28, 28, 1)).astype(np.float32)
    sigma = 0.3
    a = metrics.parzen_log_likelihood(samples, test, test, sigmas=(sigma,), batch_size=7)
    b = metrics.parzen_log_likelihood(samples, test, test, sigmas=(sigma,), batch_size=1000)
    s, t = samples.reshape(50, -1).astype(np.float64), test.reshape(30, -1).astype(np.float64)
    d2 = ((t[:, None, :] - s[None, :, :]) ** 2).sum(-1)
    direct = scipy.special.logsumexp(-d2 / (2 * sigma**2), axis=1) - np.log(50) - 784 * np.log(sigma * np.sqrt(2 * np.pi))
    assert a.mean == pytest.approx(direct.mean(), rel=1e-5)
    assert a.mean == pytest.approx(b.mean, rel=1e-6)


def test_parzen_uses_the_papers_sigma_grid():
    assert metrics.PARZEN_SIGMAS == pytest.approx(tuple(np.logspace(-1, 0, 10)))
    assert len(metrics.PARZEN_SIGMAS) == 10


def test_parzen_rejects_mismatched_images():
    with pytest.raises(ValueError, match="do not match"):
        metrics.parzen_log_likelihood(np.zeros((5, 784)), np.zeros((5, 100)), np.zeros((5, 784)))
