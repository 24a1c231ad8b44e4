"""
The latency curve: p50 and p99 delivery latency against the offered rate,
for each server, as a table and as a PNG plot (matplotlib, the C{bench}
extra: C{pip install 'chatservice[bench]'}).
"""

from typing import Any, Dict, List, Optional, Sequence

#: The offered rates of C{--curve} with no list, in deliveries per second.
CURVE_RATES = (1000, 10000, 50000, 100000, 200000)

#: One server's curve: a point per offered rate.
Curve = List[Dict[str, Any]]


def parse_rates(text: str) -> List[float]:
    """The comma-separated offered rates of C{--curve} (C{10k} means 10,000)."""
    rates = []
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        scale = 1000 if item.endswith("k") else 1
        try:
            rate = float(item.rstrip("k")) * scale
        except ValueError:
            raise SystemExit(f"--curve: {item!r} is not a rate (for example 1k,10k,100k)")
        if rate <= 0:
            raise SystemExit(f"--curve: {item!r} must be above 0")
        rates.append(rate)
    if not rates:
        raise SystemExit("--curve needs at least one rate")
    return rates


def point(rate: float, result: Dict[str, Any]) -> Dict[str, Any]:
    """One point of a curve, from a latency result at offered C{rate}."""
    return {"offered": rate,
            "achieved": result.get("achieved_offered_per_second"),
            "p50_ms": result.get("latency_p50_ms"),
            "p99_ms": result.get("latency_p99_ms"),
            "max_ms": result.get("latency_max_ms"),
            "lost": result.get("lost"),
            "error": result.get("error")}


def format_curves(curves: Dict[str, Curve]) -> str:
    """The curves as a table: a row per rate, p50 / p99 for each server."""
    labels = list(curves)
    rates = sorted({p["offered"] for c in curves.values() for p in c})
    header = ["offered/s"] + [f"{label} p50 / p99 (ms)" for label in labels]
    rows = [header]
    for rate in rates:
        row = [f"{rate:,.0f}"]
        for label in labels:
            found = [p for p in curves[label] if p["offered"] == rate]
            if not found or found[0]["p50_ms"] is None:
                row.append("failed" if found and found[0]["error"] else "-")
                continue
            p = found[0]
            lost = f", lost {p['lost']:,}" if p["lost"] else ""
            row.append(f"{p['p50_ms']:,.2f} / {p['p99_ms']:,.2f}{lost}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def plot_curves(curves: Dict[str, Curve], path: str, title: str) -> Optional[str]:
    """
    Draw the curves (p50 solid, p99 dashed, both axes logarithmic) into the
    PNG file C{path}; return why not (matplotlib missing), or L{None}.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return "matplotlib is not installed (pip install 'chatservice[bench]')"
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    for label, curve in curves.items():
        done = [p for p in curve if p["p50_ms"] is not None]
        xs: Sequence[float] = [p["offered"] for p in done]
        line, = axes.plot(xs, [p["p50_ms"] for p in done], marker="o", label=f"{label} p50")
        axes.plot(xs, [p["p99_ms"] for p in done], marker="^", linestyle="--",
                  color=line.get_color(), label=f"{label} p99")
    axes.set_xscale("log")
    axes.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:,.4g}")
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    axes.set_xlabel("offered deliveries per second")
    axes.set_ylabel("delivery latency (ms)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return None
