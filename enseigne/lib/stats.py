"""Small statistics the dashboards and reports need: rates with Wilson intervals, differences
of two rates or two means with their 95 % interval, medians, size groups.

Here, not in ``analytics``, because apps before analytics (journeys' lift) use them too."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """``hits`` out of ``n``, with its 95 % Wilson score interval (honest for small ``n``)."""

    hits: int
    n: int

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.hits, self.n)

    @property
    def percent(self) -> float | None:
        return None if self.value is None else 100 * self.value


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    if n <= 0:
        return None
    # More hits than trials means the log lacks some sends (tracking turned on mid-campaign,
    # events lost in a crash): the rate is then at most 100 %, never a math error.
    p = min(max(hits, 0), n) / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def compare(rate: Rate, reference: float | None, *, higher_is_better: bool = True) -> str:
    """'better', 'worse' or '' when the interval contains the reference (or there is no data).

    A unit is called better or worse only when its whole interval lies on one side, so a
    small unit with 3 clicks out of 20 is not ranked on noise.
    """
    interval = rate.interval
    if interval is None or reference is None:
        return ""
    low, high = interval
    if low > reference:
        return "better" if higher_is_better else "worse"
    if high < reference:
        return "worse" if higher_is_better else "better"
    return ""


@dataclass(frozen=True)
class Mean:
    """The mean of ``n`` values given by their sum and their sum of squares (what one SQL
    ``SUM`` pass returns), with the sample variance."""

    n: int
    total: float
    squares: float

    @property
    def value(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        if self.n < 2:
            return None
        # Rounding can leave a tiny negative for identical values.
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True)
class Difference:
    """``value`` = a − b with its 95 % interval [low, high]."""

    value: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        """'higher' or 'lower' when the whole interval lies on one side of zero, else ''."""
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return ""


def rate_difference(a: Rate, b: Rate) -> Difference | None:
    """a − b with Newcombe's hybrid score interval (his method 10), built from each rate's
    Wilson interval: honest for small groups and rates near 0 %, unlike p ± 1.96·se."""
    if a.value is None or b.value is None:
        return None
    (a_low, a_high), (b_low, b_high) = wilson(a.hits, a.n), wilson(b.hits, b.n)  # type: ignore[misc]
    pa, pb = min(max(a.hits, 0), a.n) / a.n, min(max(b.hits, 0), b.n) / b.n
    difference = pa - pb
    return Difference(
        value=difference,
        low=difference - math.sqrt((pa - a_low) ** 2 + (b_high - pb) ** 2),
        high=difference + math.sqrt((a_high - pa) ** 2 + (pb - b_low) ** 2),
    )


def mean_difference(a: Mean, b: Mean, z: float = Z95) -> Difference | None:
    """a − b with the normal (Welch) interval ± z·√(s²a/na + s²b/nb): fair for the group sizes
    a report asks before it tells a difference (the means of a few hundred values)."""
    if a.variance is None or b.variance is None or a.value is None or b.value is None:
        return None
    difference = a.value - b.value
    half = z * math.sqrt(a.variance / a.n + b.variance / b.n)
    return Difference(value=difference, low=difference - half, high=difference + half)


def share_interval(
    revenue: float, orders: int, squares: float, cross: float,
    total: float, total_orders: int, total_squares: float,
) -> tuple[float, float] | None:  # fmt: skip
    """The 95 % interval of a store's share of revenue in a category, R = Y / X, with the
    store's orders as the sample (the ratio estimator's linearised variance:
    Var(R) ≈ Σ (yᵢ − R xᵢ)² / (n (n − 1) x̄²)); None with fewer than two orders or no revenue.
    Σ (yᵢ − R xᵢ)² = Σ yᵢ² − 2 R Σ xᵢ yᵢ + R² Σ xᵢ², over every order (yᵢ = 0 where the
    category is absent)."""
    n = total_orders
    if n < 2 or total <= 0:
        return None
    share = revenue / total
    spread = max(0.0, squares - 2 * share * cross + share * share * total_squares)
    mean = total / n
    half = Z95 * math.sqrt(spread / (n * (n - 1))) / mean
    return share - half, share + half


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# Contact-base sizes that make units "similar" (upper bounds; the last group is open).
SIZE_BOUNDS = (1_000, 5_000, 20_000, 100_000)


def size_group(contacts: int) -> int:
    for index, bound in enumerate(SIZE_BOUNDS):
        if contacts < bound:
            return index
    return len(SIZE_BOUNDS)


def size_group_label(group: int) -> str:
    low = 0 if group == 0 else SIZE_BOUNDS[group - 1]
    if group >= len(SIZE_BOUNDS):
        return f"≥ {low:,}".replace(",", "\u202f")
    return f"{low:,}–{SIZE_BOUNDS[group] - 1:,}".replace(",", "\u202f")


def sparkline(values: list[float], width: int = 120, height: int = 24) -> str:
    """SVG polyline points for ``values`` (drawn by the template; no script needed)."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}" for i, v in enumerate(values)
    )
