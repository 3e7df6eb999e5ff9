"""Statistics over seeds: per-metric summaries and paired differences between methods.

The confidence interval is Student's t-interval, ``mean +- t(0.975, n - 1) * sd / sqrt(n)``
(``scipy.stats.t``), which assumes the per-seed values are roughly normal; it is None below
two values.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scipy import stats as scipy_stats

CONFIDENCE = 0.95
INTERVAL = "95% Student t-interval over seeds: mean +- t(0.975, n-1) * sd / sqrt(n) (scipy.stats.t)"


def describe(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, sample standard deviation (ddof=1), median, min, max and the 95% t-interval.

    Args:
        values: one number per seed.

    Returns:
        A dict with keys ``n mean sd median min max ci95``; ``sd`` and ``ci95`` are None for
        fewer than two values, ``ci95`` is ``[low, high]``.
    """
    n = len(values)
    if n == 0:
        raise ValueError("describe() needs at least one value")
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if n > 1 else None
    ci = None
    if sd is not None:
        half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n)
        ci = [mean - half, mean + half]
    return {
        "n": n,
        "mean": mean,
        "sd": sd,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "ci95": ci,
    }


def aggregate(metrics_by_seed: Mapping[int, Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """Describe every metric over the seeds that report it, in first-seen order."""
    names = _ordered(name for metrics in metrics_by_seed.values() for name in metrics)
    return {
        name: describe([m[name] for m in metrics_by_seed.values() if name in m]) for name in names
    }


def paired(metrics_by_seed: Mapping[int, Mapping[str, float]]) -> list[dict[str, Any]]:
    """Per-seed differences between methods that share a metric name.

    Metrics named ``METHOD/NAME`` (``dann/target_accuracy``, ``source-only/target_accuracy``)
    pair up by NAME; for each two methods (in first-seen order, ``a - b``), the difference on
    every seed that reports both is described like a metric.

    Returns:
        One dict per (metric, a, b): ``metric``, ``a``, ``b``, ``seeds`` and :func:`describe`'s
        keys.
    """
    names = _ordered(name for metrics in metrics_by_seed.values() for name in metrics)
    methods_of: dict[str, list[str]] = {}
    for name in names:
        method, sep, metric = name.partition("/")
        if sep and metric:
            methods_of.setdefault(metric, []).append(method)
    rows = []
    for metric, methods in methods_of.items():
        for i, a in enumerate(methods):
            for b in methods[i + 1 :]:
                key_a, key_b = f"{a}/{metric}", f"{b}/{metric}"
                seeds = [s for s, m in metrics_by_seed.items() if key_a in m and key_b in m]
                if not seeds:
                    continue
                diffs = [metrics_by_seed[s][key_a] - metrics_by_seed[s][key_b] for s in seeds]
                rows.append({"metric": metric, "a": a, "b": b, "seeds": seeds, **describe(diffs)})
    return rows


def _ordered(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))
