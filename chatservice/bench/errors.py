"""
The one exception of the load benchmark.
"""


class BenchError(Exception):
    """A workload or a server could not be run; the message says why."""
