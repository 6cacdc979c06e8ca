"""The one bootstrap behind every interval and p-value, and the distribution helpers (no torch)."""

from __future__ import annotations

import numpy as np

__all__ = ['MIN_INTERVAL_COUNT', 'N_BOOT', 'softmax', 'wilson_interval', 'bootstrap_ci', 'bootstrap_interval', 'bootstrap_means', 'format_p_value', 'kl_divergence', 'paired_bootstrap']


# Fewer questions than this in a bucket: no interval and no p-value are shown (the bootstrap of a
# handful of 0/1 scores is not an interval anyone should read), only the count and the mean.
MIN_INTERVAL_COUNT = 10

# The resamples of every bootstrap interval a person is shown, wherever it is shown (tables, the report, the
# explorers): with one seed, the same bucket has the same interval everywhere.
N_BOOT = 1000


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """``exp(z / T)`` normalised, in float64 and overflow-free: the one softmax of the package
    (n-best probabilities, soft targets, teacher distributions, entropies).

    >>> softmax([0.0, 0.0]).tolist(), softmax([1000.0, 0.0]).round(3).tolist()
    ([0.5, 0.5], [1.0, 0.0])
    """
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = np.exp(z - z.max())
    return z / z.sum()


def _check_n_boot(n_boot) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be at least 2 resamples for an interval, got {n_boot!r} (1000 is the default)")


def bootstrap_means(values, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """The means of ``n_boot`` seeded resamples of the rows of ``values`` (rows resampled together):
    the one bootstrap of the package, behind every interval and p-value.

    >>> bootstrap_means([2.0, 2.0], n_boot=3).tolist()
    [2.0, 2.0, 2.0]
    """
    _check_n_boot(n_boot)
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(n_boot, len(values)))
    if values.ndim == 1:
        return values[picks].mean(axis=1)
    # one resample at a time: [n_boot, rows, columns] at once would not fit in memory
    return np.stack([values[p].mean(axis=0) for p in picks])


def bootstrap_interval(values, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """Percentile bootstrap interval of the mean over the first axis (see :func:`bootstrap_means`),
    so a 2-D ``values`` gives an interval per column from the same resamples. Returns
    ``(low, high)``: floats for 1-D values, arrays for 2-D; NaN when there are no rows.

    >>> bootstrap_interval([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    _check_n_boot(n_boot)
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        empty = np.full(values.shape[1:], np.nan)
        return (float("nan"), float("nan")) if values.ndim == 1 else (empty, empty.copy())
    means = bootstrap_means(values, n_boot=n_boot, seed=seed)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, alpha, axis=0), np.quantile(means, 1 - alpha, axis=0)
    return (float(low), float(high)) if values.ndim == 1 else (low, high)


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (see :func:`bootstrap_interval`).

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    return bootstrap_interval(np.asarray(values, dtype=float).ravel(), n_boot=n_boot, seed=seed, level=level)


def format_p_value(p: float, n_boot: int) -> str:
    """A bootstrap p-value as text: below the resolution of ``n_boot`` resamples it is an upper
    bound, never "0.0".

    >>> format_p_value(0.0, 1000), format_p_value(0.0342, 1000)
    ('< 0.001', '0.034')
    """
    floor = 1.0 / n_boot
    return f"< {floor:.3g}" if p < floor else f"{p:.3f}"


def paired_bootstrap(a, b, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean of ``b - a`` over paired questions, its percentile bootstrap interval, and a two-sided
    p-value (twice the smaller share of resampled differences on either side of zero).

    >>> r = paired_bootstrap([0, 0, 1, 1], [1, 1, 1, 1], n_boot=200)
    >>> r["difference"], r["p_value"] < 0.5
    (0.5, True)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same length")
    differences = b - a
    means = bootstrap_means(differences, n_boot=n_boot, seed=seed)
    alpha = (1 - level) / 2
    p_value = min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean()))
    return {"difference": float(differences.mean()), "low": float(np.quantile(means, alpha)),
            "high": float(np.quantile(means, 1 - alpha)), "p_value": float(p_value)}


def kl_divergence(p, q, eps: float = 1e-12) -> float:
    """KL(p || q) in nats, with ``eps`` guarding empty cells of q.

    >>> round(kl_divergence([0.5, 0.5], [0.9, 0.1]), 4)
    0.5108
    """
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], eps))))


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``successes / n`` (0 to 1): never degenerate at 0 or 1,
    where a bootstrap of all-equal values collapses to a point (``all 70 of 70`` is not certainty).
    NaNs for ``n == 0``.

    >>> [round(v, 4) for v in wilson_interval(70, 70)]
    [0.948, 1.0]
    >>> [round(v, 4) for v in wilson_interval(5, 10)]
    [0.2366, 0.7634]
    """
    from statistics import NormalDist

    if n == 0:
        return float("nan"), float("nan")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n ({n}), got {successes}")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # the ends are exact: no float residue
    high = 1.0 if successes == n else min(1.0, centre + half)
    return float(low), float(high)

