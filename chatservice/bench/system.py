"""
Operating-system helpers for the load benchmark: open-file limits, free
ports, and the CPU and memory of a process (from C{/proc}), and percentiles.
"""

import math
import os
import resource
import socket
from typing import Optional, Sequence


def raise_nofile_limit() -> int:
    """
    Raise this process's soft limit on open files to its hard limit (ten
    thousand connections need it) and return the new soft limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used, in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_status(pid: int, field: str) -> Optional[int]:
    """
    Return a C{/proc/PID/status} memory field (C{VmRSS}, C{VmHWM}) in
    bytes, or L{None} if the process or the field is not there.
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def proc_cpu(pid: int) -> Optional[float]:
    """Return the CPU seconds (user + system) process C{pid} has used."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def percentile(ordered: Sequence[float], fraction: float) -> Optional[float]:
    """The C{fraction} percentile of the sorted C{ordered} (nearest rank)."""
    if not ordered:
        return None
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[min(rank, len(ordered) - 1)]
