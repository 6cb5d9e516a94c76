"""Paired significance tests for arms measured on the same prompts and seeds (the claims table).

Two arms of an ablation sample every prompt with the same seed, so their outcomes pair up. For a
binary outcome (the probe says "right" or not) the exact McNemar test looks only at the pairs where
the arms disagree; for a graded outcome (direction kept at a share of the joins) the exact sign test
looks at the pairs whose difference is not zero. Both reduce to a two-sided binomial test with
p = 1/2 on the disagreeing pairs, which is exact at any sample size (no normal approximation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import comb


def binomial_two_sided(successes: int, trials: int) -> float:
    """Exact two-sided p of ``successes`` in ``trials`` under Binomial(trials, 1/2)."""
    if trials == 0:
        return 1.0
    k = min(successes, trials - successes)
    tail = sum(comb(trials, i) for i in range(k + 1)) / 2**trials
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class PairedResult:
    """Arm ``b`` against arm ``a`` on ``n`` pairs: means, how many pairs favour each, and p."""

    n: int
    mean_a: float
    mean_b: float
    b_better: int
    a_better: int
    p_value: float

    @property
    def difference(self) -> float:
        return self.mean_b - self.mean_a


def paired_test(a: Sequence[float | bool | None], b: Sequence[float | bool | None]) -> PairedResult:
    """The exact sign test (McNemar's for 0/1 outcomes) of ``b`` against ``a``, pair by pair.

    Pairs where either value is None (not measurable: the probe saw no object) are left out.
    """
    if len(a) != len(b):
        raise ValueError(f"paired arms need the same samples: {len(a)} against {len(b)}")
    pairs = [(float(x), float(y)) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not pairs:
        raise ValueError("no pair has both values")
    b_better = sum(y > x for x, y in pairs)
    a_better = sum(x > y for x, y in pairs)
    return PairedResult(
        n=len(pairs),
        mean_a=sum(x for x, _ in pairs) / len(pairs),
        mean_b=sum(y for _, y in pairs) / len(pairs),
        b_better=b_better,
        a_better=a_better,
        p_value=binomial_two_sided(b_better, b_better + a_better),
    )
