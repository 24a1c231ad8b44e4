"""
A histogram of durations kept as plain numbers: bucket counts, a sum and a
count.  The code that measures (the store's writer thread, the event-loop
lag monitor) observes into it without locks or a metrics library, and the
metrics (L{chatservice.metrics}) read it at scrape time.
"""

from bisect import bisect_left
from typing import List, Sequence, Tuple


class Histogram:
    """
    Counts of observed values by upper bound, Prometheus style (a value
    equal to a bound falls in that bound's bucket), plus the values' sum
    and count.  One thread observes; readers may see a count one ahead of
    the buckets, never a torn number.

    @ivar bounds: the buckets' upper bounds, ascending (C{+Inf} is implied).
    @ivar sum: the sum of the values observed.
    @ivar count: how many values were observed.
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds: Tuple[float, ...] = tuple(sorted(bounds))
        self._counts: List[int] = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Count one value."""
        self._counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> List[Tuple[str, int]]:
        """
        Return C{(upper bound, values at or below it)} for every bucket,
        C{+Inf} last, with the bounds written as Prometheus writes them.
        """
        found, total = [], 0
        for bound, count in zip(self.bounds, self._counts):
            total += count
            found.append((repr(float(bound)), total))
        found.append(("+Inf", total + self._counts[-1]))
        return found
