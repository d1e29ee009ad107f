"""The C kernel of `ginn qc` (ginn._genotype_counts) against numpy computations of the same quantities:
genotype class counts and per-sample missing calls decoded from .bed bytes, and the HWE exact test as the
vectorised numpy walk that ginn used before the kernel (itself checked against brute-force enumeration and
plink2 --hardy in test_qc.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ginn import _genotype_counts
from ginn.qc import _log_factorials, hwe_exact_pvalues


def _numpy_walk(mode, rare, n, keep_going, threshold, negligible=None):
    """Walk each variant's heterozygote null distribution outwards from its mode (the paper's
    recurrence, probabilities relative to the mode's) while ``keep_going(prob, threshold[, negligible])``.
    Returns per variant the sum of the terms walked: without ``negligible`` those kept going (the central
    mass), with it every term and, second, the sum of those at most ``threshold`` (the tails).

    A variant that is done keeps a zero term (it cannot go on), so the arrays are compacted only once half
    of them are done: each variant costs about its own number of steps, with few gathers per step."""
    walked, tail = np.zeros_like(n), np.zeros_like(n)
    tails = negligible is not None
    for direction in (+1, -1):
        idx = np.flatnonzero(n > 0)
        het = mode[idx]
        twice_rare_hom = rare[idx] - het
        twice_common_hom = 2 * n[idx] - rare[idx] - het
        prob = np.ones(len(idx))
        limits = (threshold[idx], negligible[idx]) if tails else (threshold[idx],)
        summed, summed_tail = np.zeros(len(idx)), np.zeros(len(idx))
        while len(idx):
            if direction > 0:
                valid = (twice_rare_hom >= 2) & (twice_common_hom >= 2)
                prob = prob * (twice_rare_hom * twice_common_hom) / ((het + 1) * (het + 2))
            else:
                valid = het >= 2
                prob = prob * (het * (het - 1)) / ((twice_rare_hom + 2) * (twice_common_hom + 2))
            het = het + 2 * direction
            twice_rare_hom = twice_rare_hom - 2 * direction
            twice_common_hom = twice_common_hom - 2 * direction
            prob = np.where(valid, prob, 0.0)
            going = valid & keep_going(prob, *limits)
            if tails:
                summed += prob
                summed_tail += np.where(prob <= limits[0], prob, 0.0)
            prob = np.where(going, prob, 0.0)
            if not tails:
                summed += prob
            alive = np.count_nonzero(going)
            if 2 * alive <= len(idx):
                walked[idx] += summed
                tail[idx] += summed_tail
                keep = np.flatnonzero(going)
                idx, het, twice_rare_hom, twice_common_hom, prob = (
                    x[keep] for x in (idx, het, twice_rare_hom, twice_common_hom, prob))
                limits = tuple(x[keep] for x in limits)
                summed, summed_tail = np.zeros(len(idx)), np.zeros(len(idx))
    return walked, tail


def numpy_hwe_pvalues(n_hom_a: np.ndarray, n_het: np.ndarray, n_hom_b: np.ndarray) -> np.ndarray:
    """Two-sided HWE exact test p-values (Wigginton, Cutler & Abecasis 2005), vectorised over variants.

    The null distribution of the heterozygote count is unimodal, so the p-value (the mass of counts
    no more likely than the observed one) is 1 minus the mass of the central counts more likely than
    it. With the exact normaliser from log-gamma functions, that central part is all that is walked
    (a few steps for a variant in equilibrium). Where that p-value is below 1e-3 (its cancellation
    error would show in 6 digits) the tails are summed instead, walked with the paper's recurrence
    until the remaining terms are below 1e-17 of both the mode and the observed probability.
    """
    n_hom_a, n_het, n_hom_b = (np.asarray(a, dtype=np.float64) for a in (n_hom_a, n_het, n_hom_b))
    n = n_hom_a + n_het + n_hom_b
    rare = np.minimum(2 * n_hom_a + n_het, 2 * n_hom_b + n_het)
    safe_n = np.maximum(n, 1)
    mode = np.floor(rare * (2 * safe_n - rare) / (2 * safe_n))
    mode += (mode % 2) != (rare % 2)
    mode = np.minimum(mode, rare)

    log_factorial = _log_factorials(int(2 * n.max(initial=0)))

    def lf(k: np.ndarray) -> np.ndarray:  # log(k!) of integer-valued k
        return log_factorial[k.astype(np.int64)]

    def log_prob(het: np.ndarray) -> np.ndarray:
        hom_rare = (rare - het) / 2
        return (het * np.log(2.0) - lf(hom_rare) - lf(het) - lf(n - het - hom_rare)
                + lf(n) + lf(rare) + lf(2 * n - rare) - lf(2 * n))

    obs = np.exp(log_prob(n_het) - log_prob(mode))  # observed probability relative to the mode's
    threshold = obs * (1 + 1e-7)
    central, _ = _numpy_walk(mode, rare, n, lambda prob, limit: prob > limit, threshold)
    central += threshold < 1.0  # the mode itself
    p = np.clip(1 - central * np.exp(log_prob(mode)), 0.0, 1.0)
    rare_p = np.flatnonzero((p < 1e-3) & (n > 0))
    if rare_p.size:
        sub = (mode[rare_p], rare[rare_p], n[rare_p])
        negligible = 1e-17 * np.minimum(1.0, obs[rare_p])
        total, tail = _numpy_walk(*sub, lambda prob, limit, small: prob > small, threshold[rare_p], negligible)
        total += 1.0
        tail += (threshold[rare_p] >= 1.0)
        p[rare_p] = np.minimum(1.0, tail / total)
    return np.where(n > 0, p, 1.0)  # no hard call at all: plink2 reports p = 1


def _decode(rows: np.ndarray, n_samples: int) -> np.ndarray:
    """2-bit .bed codes (variants, samples): 0 hom A1, 1 missing, 2 het, 3 hom A2."""
    return ((rows[:, :, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)) & 3).reshape(len(rows), -1)[:, :n_samples]


def _random_rows(rng, n_variants: int, n_samples: int) -> np.ndarray:
    """Random .bed rows with missing calls, monomorphic and all-missing variants, and padding bits set (which
    must be ignored)."""
    codes = rng.choice(4, size=(n_variants, n_samples), p=[0.3, 0.05, 0.4, 0.25]).astype(np.uint8)
    codes[0], codes[1], codes[2] = 1, 3, 0  # all missing, monomorphic hom A2, monomorphic hom A1
    codes[3, ::2] = 1  # half missing, the rest het
    codes[3, 1::2] = 2
    padded = np.concatenate([codes, rng.integers(0, 4, (n_variants, -n_samples % 4), dtype=np.uint8)], axis=1)
    quads = padded.reshape(n_variants, -1, 4)
    return (quads[..., 0] | quads[..., 1] << 2 | quads[..., 2] << 4 | quads[..., 3] << 6).astype(np.uint8)


@pytest.mark.parametrize("n_samples", [1, 3, 4, 31, 32, 33, 257, 1001])
def test_counts_match_decoded_genotypes(n_samples):
    rng = np.random.default_rng(n_samples)
    rows = _random_rows(rng, 40, n_samples)
    codes = _decode(rows, n_samples)
    for keep in (np.ones(n_samples, bool), rng.random(n_samples) < 0.7, np.arange(n_samples) % 5 == 1):
        counts = np.empty((len(rows), 4), dtype=np.int64)
        _genotype_counts.count_genotypes(rows, n_samples, keep.astype(np.uint8), counts)
        kept = codes[:, keep]
        expected = np.stack([(kept == code).sum(axis=1) for code in (3, 2, 0, 1)], axis=1)  # 0, 1, 2 copies, missing
        np.testing.assert_array_equal(counts, expected)


@pytest.mark.parametrize("n_samples", [1, 5, 32, 999])
def test_missing_per_sample_matches_decoded_genotypes(n_samples):
    rng = np.random.default_rng(n_samples)
    rows = _random_rows(rng, 600, n_samples)  # more than the 255 rows a byte counter holds
    missing = np.full(n_samples, 7, dtype=np.int64)  # added to what is there
    _genotype_counts.add_missing_per_sample(rows, n_samples, missing)
    np.testing.assert_array_equal(missing, 7 + (_decode(rows, n_samples) == 1).sum(axis=0))


def test_hwe_kernel_matches_numpy_walk():
    rng = np.random.default_rng(3)
    n = rng.integers(0, 3000, 4000)
    freq = rng.beta(0.5, 0.5, len(n))
    het = rng.binomial(n, 2 * freq * (1 - freq) * rng.uniform(0.5, 1.3, len(n)).clip(max=1 / (2 * freq * (1 - freq) + 1e-9)))
    hom_a = rng.binomial(n - het, freq ** 2 / (freq ** 2 + (1 - freq) ** 2))
    hom_b = n - het - hom_a
    edge = np.array([(0, 0, 0), (5, 0, 0), (0, 0, 9), (0, 7, 0), (0, 1, 0), (1, 0, 1), (10, 0, 10), (1, 60, 1),
                     (750, 1500, 750), (700, 1600, 700), (2600, 350, 50)])
    hom_a, het, hom_b = (np.concatenate([edge[:, i], x]) for i, x in enumerate((hom_a, het, hom_b)))
    ours, oracle = hwe_exact_pvalues(hom_a, het, hom_b), numpy_hwe_pvalues(hom_a, het, hom_b)
    assert (oracle < 1e-3).sum() > 100 and (oracle == 1).sum() > 10 and (oracle < 1e-30).any()
    np.testing.assert_allclose(ours, oracle, rtol=1e-9, atol=1e-15)
