"""
The benchmark's report: the summary table with ratios between servers, the
one-line summary of each workload, and the environment it ran in.
"""

import os
import platform
import resource
import time
from typing import Any, Dict, List, Optional

from chatservice.bench.servers import Server


#: (workload, label, key, format, "higher"/"lower" is better or None) for the table.
TABLE_ROWS = [
    ("fanout", "deliveries/s", "deliveries_per_second", "{:,.0f}", "higher"),
    ("fanout", "deliveries", "deliveries", "{:,.0f}", None),
    ("fanout", "lost", "lost", "{:,.0f}", None),
    ("fanout", "time (s)", "seconds", "{:.2f}", "lower"),
    ("fanout", "latency p50 (ms)", "latency_p50_ms", "{:,.1f}", "lower"),
    ("fanout", "latency p99 (ms)", "latency_p99_ms", "{:,.1f}", "lower"),
    ("fanout", "server CPU %", "server_cpu_percent", "{:.0f}", None),
    ("fanout", "server CPU µs/delivery", "server_cpu_us_per_delivery", "{:.2f}", "lower"),
    ("fanout", "server peak RSS (MiB)", "server_peak_rss_mib", "{:,.1f}", "lower"),
    ("fanout", "generator CPU %", "generator_cpu_percent", "{:.0f}", None),
    ("fanout", "generator CPU µs/delivery", "generator_cpu_us_per_delivery", "{:.2f}", None),
    ("latency", "offered deliveries/s", "offered_deliveries_per_second", "{:,.0f}", None),
    ("latency", "achieved deliveries/s", "achieved_offered_per_second", "{:,.0f}", "higher"),
    ("latency", "p50 (ms)", "latency_p50_ms", "{:,.2f}", "lower"),
    ("latency", "p99 (ms)", "latency_p99_ms", "{:,.2f}", "lower"),
    ("latency", "max (ms)", "latency_max_ms", "{:,.2f}", "lower"),
    ("latency", "lost", "lost", "{:,.0f}", None),
    ("latency", "server CPU %", "server_cpu_percent", "{:.0f}", None),
    ("latency", "generator CPU %", "generator_cpu_percent", "{:.0f}", None),
    ("rooms", "deliveries/s", "deliveries_per_second", "{:,.0f}", "higher"),
    ("rooms", "deliveries", "deliveries", "{:,.0f}", None),
    ("rooms", "lost", "lost", "{:,.0f}", None),
    ("rooms", "time (s)", "seconds", "{:.2f}", "lower"),
    ("rooms", "latency p50 (ms)", "latency_p50_ms", "{:,.1f}", "lower"),
    ("rooms", "latency p99 (ms)", "latency_p99_ms", "{:,.1f}", "lower"),
    ("rooms", "server CPU µs/delivery", "server_cpu_us_per_delivery", "{:.2f}", "lower"),
    ("rooms", "generator CPU %", "generator_cpu_percent", "{:.0f}", None),
    ("bigroom", "lines said", "messages_sent", "{:,.0f}", None),
    ("bigroom", "server CPU ms/line", "server_cpu_ms_per_line", "{:.2f}", "lower"),
    ("bigroom", "server CPU µs/member", "server_cpu_us_per_member", "{:.2f}", "lower"),
    ("bigroom", "idle server CPU %", "server_idle_cpu_percent", "{:.1f}", None),
    ("bigroom", "p50 (ms)", "latency_p50_ms", "{:,.2f}", "lower"),
    ("bigroom", "p99 (ms)", "latency_p99_ms", "{:,.2f}", "lower"),
    ("bigroom", "max: the last members (ms)", "latency_max_ms", "{:,.2f}", "lower"),
    ("bigroom", "lost", "lost", "{:,.0f}", None),
    ("bigroom", "generator CPU %", "generator_cpu_percent", "{:.0f}", None),
    ("capacity", "logged in", "logged_in", "{:,.0f}", "higher"),
    ("capacity", "time to log in all (s)", "login_seconds", "{:.2f}", "lower"),
    ("capacity", "gave up after (s)", "gave_up_after_seconds", "{:.1f}", None),
    ("capacity", "logins/s", "logins_per_second", "{:,.0f}", "higher"),
    ("capacity", "server RSS before (MiB)", "server_rss_before_mib", "{:,.1f}", None),
    ("capacity", "server RSS after (MiB)", "server_rss_after_mib", "{:,.1f}", None),
    ("capacity", "RSS per connection (KiB)", "server_rss_per_connection_kib", "{:,.1f}", "lower"),
    ("capacity", "lost", "lost", "{:,.0f}", None),
    ("capacity", "server CPU %", "server_cpu_percent", "{:.0f}", None),
    ("capacity", "generator CPU %", "generator_cpu_percent", "{:.0f}", None),
    ("storm", "connections+logins/s", "logins_per_second", "{:,.0f}", "higher"),
    ("storm", "time (s)", "seconds", "{:.2f}", "lower"),
    ("storm", "connections in flight", "window", "{:,.0f}", None),
    ("storm", "lost", "lost", "{:,.0f}", None),
    ("storm", "server CPU %", "server_cpu_percent", "{:.0f}", None),
    ("storm", "generator CPU %", "generator_cpu_percent", "{:.0f}", None),
]


def compute_ratios(results: Dict[str, Dict[str, Any]], reference: str) -> Dict[str, Dict[str, float]]:
    """
    Return, for every other server, C{reference}'s figure divided by its
    figure, for the rows where one is better than the other.
    """
    ratios: Dict[str, Dict[str, float]] = {}
    ref = results.get(reference, {})
    for label, per in results.items():
        if label == reference:
            continue
        out = {}
        for workload, name, key, _, better in TABLE_ROWS:
            if better is None:
                continue
            a = (ref.get(workload) or {}).get(key)
            b = (per.get(workload) or {}).get(key)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
                out[f"{workload} {name}"] = round(a / b, 3)
        ratios[f"{reference}/{label}"] = out
    return ratios


def format_table(results: Dict[str, Dict[str, Any]], labels: List[str], config: Dict[str, Any],
                 reference: Optional[str]) -> str:
    """The summary table: one column per server, then the ratios."""
    others = [l for l in labels if l != reference] if reference else []
    header = ["workload / metric"] + labels + [f"{reference}÷{o}" for o in others]
    rows = [header]
    titles = {
        "fanout": f"fanout ({config['clients']} clients, {config['senders']} senders x "
                  f"{config['messages']} msgs)",
        "latency": f"latency ({config['latency_clients']} clients, "
                   f"{config['rate']:,.0f} deliveries/s offered, {config['duration']:g} s)",
        "rooms": f"rooms ({config['rooms_clients']:,} clients in {config['rooms_count']} "
                 f"rooms, {config['rooms_senders']} senders x {config['rooms_messages']} msgs)",
        "bigroom": f"bigroom ({config['bigroom_clients']:,} members, "
                   f"{config['bigroom_rate']:g} lines/s, {config['duration']:g} s)",
        "capacity": f"capacity ({config['capacity']:,} idle clients)",
        "storm": f"login storm ({config['storm']:,} clients)",
    }
    seen = []
    for workload, name, key, fmt, better in TABLE_ROWS:
        if not any(workload in results.get(l, {}) for l in labels):
            continue
        if workload not in seen:
            seen.append(workload)
            rows.append([titles[workload]] + [
                _status(results.get(l, {}).get(workload)) for l in labels] + [""] * len(others))
        cells = ["  " + name]
        for l in labels:
            value = (results.get(l, {}).get(workload) or {}).get(key)
            cells.append(fmt.format(value) if isinstance(value, (int, float)) else "-")
        for o in others:
            a = (results.get(reference, {}).get(workload) or {}).get(key)
            b = (results.get(o, {}).get(workload) or {}).get(key)
            ok = better and isinstance(a, (int, float)) and isinstance(b, (int, float)) and b
            cells.append(f"{a / b:.2f}x" if ok else "")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[0]) if j == 0 else c.rjust(widths[j])
                               for j, c in enumerate(r)).rstrip())
        if i == 0:
            lines.append("-" * len(lines[0]))
    if others:
        lines.append(f"(ratio = {reference}'s figure / the other's: above 1 is better for "
                     "rates and logins, below 1 is better for time, latency and memory)")
    return "\n".join(lines)


def _status(result: Optional[Dict[str, Any]]) -> str:
    if result is None:
        return ""
    if "error" in result:
        return "FAILED"
    if "skipped" in result:
        return "skipped"
    return ""


def environment(servers: List[Server], procs: int) -> Dict[str, Any]:
    """The date, machine and software versions, for the report."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        mem = None
    try:
        import twisted

        twisted_version = twisted.__version__
    except ImportError:
        twisted_version = "?"
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "memory_gib":
                    round(mem / 2**30, 1) if mem else None,
                    "os": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "generator": {"python": f"{platform.python_implementation()} {platform.python_version()}",
                      "twisted": twisted_version, "processes": procs,
                      "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]},
        "servers": {s.label: s.describe() for s in servers},
    }


def summary_line(workload: str, r: Dict[str, Any]) -> str:
    """One line about a finished workload, for the log on stderr."""
    if workload in ("fanout", "rooms"):
        return (f"{r['deliveries']:,} deliveries in {r['seconds']:.2f} s = "
                f"{r['deliveries_per_second']:,.0f}/s, lost {r['lost']:,}, "
                f"p50 {r['latency_p50_ms']} ms, server CPU {_pct(r['server_cpu_percent'])}, "
                f"generator CPU {_pct(r['generator_cpu_percent'])} "
                f"(busiest process {_pct(r['generator_max_process_cpu_percent'])})")
    if workload == "latency":
        return (f"p50 {r['latency_p50_ms']} ms, p99 {r['latency_p99_ms']} ms, max "
                f"{r['latency_max_ms']} ms at {_num(r['achieved_offered_per_second'])} "
                f"deliveries/s, lost {r['lost']:,}, server CPU {_pct(r['server_cpu_percent'])}, "
                f"generator CPU {_pct(r['generator_cpu_percent'])}")
    if workload == "bigroom":
        return (f"{r['messages_sent']:,} lines to {r['receivers']:,} members: server CPU "
                f"{_num(r['server_cpu_ms_per_line'], '{:.2f}')} ms/line = "
                f"{_num(r['server_cpu_us_per_member'], '{:.2f}')} µs/member, p50 "
                f"{r['latency_p50_ms']} ms, max {r['latency_max_ms']} ms, lost {r['lost']:,}")
    if workload == "capacity":
        took = r["login_seconds"] or r["gave_up_after_seconds"]
        return (f"{r['logged_in']:,}/{r['clients']:,} logged in in {took:.2f} s "
                f"({r['logins_per_second']:,.0f}/s), RSS {r['server_rss_before_mib']} -> "
                f"{r['server_rss_after_mib']} MiB = "
                f"{_num(r['server_rss_per_connection_kib'], '{:.1f}')} KiB per connection, "
                f"lost {r['lost']:,}")
    return (f"{r['logged_in']:,}/{r['clients']:,} connected and logged in in "
            f"{r['seconds']:.2f} s = {r['logins_per_second']:,.0f}/s, lost {r['lost']:,}, "
            f"server CPU {_pct(r['server_cpu_percent'])}")


def _pct(value: Optional[float]) -> str:
    return "?" if value is None else f"{value:.0f}%"


def _num(value: Optional[float], fmt: str = "{:,.0f}") -> str:
    return "?" if value is None else fmt.format(value)
