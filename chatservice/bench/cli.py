"""
The command line of the load benchmark: options, the sizes in force, the
servers to measure, and L{main}, which runs everything and prints the report.
"""

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence

from chatservice.bench.curve import (CURVE_RATES, format_curves, parse_rates, plot_curves,
                                     point)
from chatservice.bench.dialects import DIALECTS
from chatservice.bench.errors import BenchError
from chatservice.bench.report import compute_ratios, environment, format_table, summary_line
from chatservice.bench.servers import Server, run_words_server
from chatservice.bench.system import raise_nofile_limit
from chatservice.bench.workers import WorkerPool
from chatservice.bench.workloads import Bench, Progress

#: Sizes for the full run: the targets of the benchmark issue.
FULL = {
    "clients": 500, "senders": 10, "messages": 500, "size": 40,
    "latency_clients": 1000, "latency_senders": 10, "rate": 100000.0,
    "duration": 10.0, "capacity": 10000, "storm": 2000, "samplers": 20,
    "window": 50, "procs": 2, "timeout": 180.0, "quiet": 5.0,
    "bigroom_clients": 10000, "bigroom_rate": 4.0, "per_source": 100,
    "rooms_clients": 2000, "rooms_count": 100, "rooms_senders": 50, "rooms_messages": 200,
    "warmup": 0,
}

#: Sizes for C{--quick}: a smoke run that takes seconds.
QUICK = dict(FULL, clients=20, senders=3, messages=50, latency_clients=20,
             latency_senders=2, rate=2000.0, duration=2.0, capacity=200,
             storm=200, samplers=5, procs=1, timeout=30.0, quiet=2.0,
             bigroom_clients=200, rooms_clients=40, rooms_count=4, rooms_senders=4,
             rooms_messages=20)

ALL_SERVERS = ("chatservice", "words", "ngircd")
#: Servers that can be named in --servers but are not run by default:
#: chatservice-nodb is chatservice with --no-database (persistence off);
#: chatservice-metrics is chatservice with its metrics port on (the
#: event-loop lag monitor running, /metrics served).
#: chatservice-irc is chatservice measured through its IRC front end
#: (--irc-port), with the same IRC dialect as ngircd.
VARIANTS = {"chatservice-nodb": ("chatservice", ["--no-database"]),
            "chatservice-metrics": ("chatservice", ["--metrics-port", "tcp:0"]),
            "chatservice-web": ("chatservice", ["--web-port", "tcp:0:interface=127.0.0.1"]),
            "chatservice-webz": ("chatservice", ["--web-port", "tcp:0:interface=127.0.0.1"]),
            "chatservice-irc": ("chatservice", ["--irc-port", "tcp:0:interface=127.0.0.1"])}
#: The dialect a variant's clients speak, when it is not its kind's:
#: chatservice-web's are WebSocket clients of its --web-port, chatservice-irc's
#: IRC clients of its --irc-port.
VARIANT_DIALECTS = {"chatservice-web": "web", "chatservice-webz": "webz",
                    "chatservice-irc": "irc"}
ALL_WORKLOADS = ("fanout", "latency", "capacity", "storm")
#: Workloads that can be named in --workloads but are not run by default.
EXTRA_WORKLOADS = ("rooms", "bigroom")


# -- the command line ------------------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="python -m chatservice.bench",
        description="Load benchmark: chatservice against twisted.words and ngircd, "
                    "same workloads, same run.",
        epilog="Sizes default to the full run (the benchmark issue's targets); "
               "--quick gives a run of a few seconds. Explicit sizes win over both.")
    g = p.add_argument_group("what to run")
    g.add_argument("--servers", default=",".join(ALL_SERVERS),
                   help="comma-separated servers to start and measure: chatservice, words, "
                        "ngircd, chatservice-nodb (chatservice with --no-database, to "
                        "compare persistence off with on), chatservice-metrics "
                        "(with --metrics-port tcp:0), chatservice-web (its "
                        "--web-port, with WebSocket clients), chatservice-webz (the same, "
                        "with permessage-deflate, as browsers) and chatservice-irc "
                        "(its IRC front end, --irc-port, in the IRC dialect); NAME=PYTHON runs a Python server "
                        "under that interpreter (e.g. chatservice=/opt/pypy-venv/bin/python) "
                        "[%(default)s]")
    g.add_argument("--workloads", default=",".join(ALL_WORKLOADS),
                   help="comma-separated workloads: fanout, latency, capacity, storm, "
                        "and, when named, rooms (many rooms at once) and bigroom (server "
                        "CPU per line to one very large room) "
                        "[%(default)s]")
    g.add_argument("--server-python", metavar="PATH",
                   help="the python of a venv where chatservice is installed, used to run "
                        "the Python servers (PATH -m twisted -n chat ...) [this python]")
    g.add_argument("--target", metavar="HOST:PORT",
                   help="measure an already running server instead of starting any")
    g.add_argument("--target-protocol", choices=sorted(DIALECTS), default="chat",
                   help="what the --target server speaks [%(default)s]")
    g.add_argument("--target-pid", type=int, metavar="PID",
                   help="the --target server's pid, to read its memory and CPU")
    g.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    s = p.add_argument_group("sizes")
    s.add_argument("--clients", type=int, help=f"fanout: clients in the room [{FULL['clients']}]")
    s.add_argument("--senders", type=int, help=f"fanout: senders among them [{FULL['senders']}]")
    s.add_argument("--messages", type=int, help=f"fanout: messages per sender [{FULL['messages']}]")
    s.add_argument("--size", type=int, help=f"bytes of text per message [{FULL['size']}]")
    s.add_argument("--latency-clients", type=int,
                   help=f"latency: clients in the room [{FULL['latency_clients']}]")
    s.add_argument("--latency-senders", type=int,
                   help=f"latency: senders among them [{FULL['latency_senders']}]")
    s.add_argument("--rate", type=float,
                   help=f"latency: offered deliveries per second [{FULL['rate']:g}]")
    s.add_argument("--duration", type=float,
                   help=f"latency: seconds of sending [{FULL['duration']:g}]")
    s.add_argument("--rooms-clients", type=int,
                   help=f"rooms: clients, spread over the rooms [{FULL['rooms_clients']}]")
    s.add_argument("--rooms-count", type=int, help=f"rooms: rooms [{FULL['rooms_count']}]")
    s.add_argument("--rooms-senders", type=int,
                   help=f"rooms: senders, in different rooms [{FULL['rooms_senders']}]")
    s.add_argument("--rooms-messages", type=int,
                   help=f"rooms: messages per sender [{FULL['rooms_messages']}]")
    s.add_argument("--bigroom-clients", type=int,
                   help=f"bigroom: members of the one room [{FULL['bigroom_clients']}]")
    s.add_argument("--bigroom-rate", type=float,
                   help=f"bigroom: lines per second said to it, for --duration "
                        f"[{FULL['bigroom_rate']:g}]")
    s.add_argument("--capacity", type=int, help=f"capacity: idle clients [{FULL['capacity']}]")
    s.add_argument("--storm", type=int, help=f"login storm: clients [{FULL['storm']}]")
    s.add_argument("--samplers", type=int,
                   help=f"receivers that parse lines for latency [{FULL['samplers']}]")
    t = p.add_argument_group("generator")
    t.add_argument("--procs", type=int,
                   help=f"load-generator processes [{FULL['procs']}; --quick: {QUICK['procs']}]")
    t.add_argument("--window", type=int,
                   help="connections being set up at once, over all processes, never more "
                        "than the server's listen backlog (read with ss) "
                        f"[{FULL['window']}]")
    t.add_argument("--per-source", type=int,
                   help="clients per local address, from 127.0.1.0 upwards, when the "
                        "server is on a loopback address (past one address's 28,000 "
                        "ports and any per-address limit); 0: all from the kernel's "
                        f"choice [{FULL['per_source']}]")
    t.add_argument("--warmup", type=int,
                   help="unmeasured passes of the fanout and rooms workloads before the "
                        "measured one, on the same server (PyPy's JIT compiles the hot "
                        f"paths during the first ones) [{FULL['warmup']}]")
    t.add_argument("--ignore-backlog", action="store_true",
                   help="let --window exceed the server's listen backlog (connections "
                        "the accept queue drops then wait for the kernel's 1 s SYN retry)")
    t.add_argument("--timeout", type=float,
                   help=f"hard limit for each phase of a workload, in seconds [{FULL['timeout']:g}]")
    t.add_argument("--quiet", type=float,
                   help="after the last send, stop waiting when nothing arrives for this "
                        f"long, and count the rest as lost [{FULL['quiet']:g}]")
    g.add_argument("--curve", nargs="?", const=",".join(f"{r // 1000}k" for r in CURVE_RATES),
                   metavar="RATES",
                   help="instead of the workloads: the latency workload at each offered "
                        "rate (deliveries/s, comma-separated; 10k = 10,000), p50 and p99 "
                        "per server as a table, in the JSON report and as a PNG plot "
                        "(--plot) [%(const)s]")
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    o.add_argument("--plot", metavar="FILE.png",
                   help="where --curve draws its plot [next to --json, else "
                        "latency-curve.png]")
    o.add_argument("--progress", action="store_true",
                   help="show the live progress line even when stderr is not a terminal")
    p.add_argument("--words-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> Dict[str, Any]:
    """The sizes in force: the profile (full or quick) with explicit options on top."""
    config = dict(QUICK if args.quick else FULL)
    config["ignore_backlog"] = bool(getattr(args, "ignore_backlog", False))
    for key in FULL:
        value = getattr(args, key, None)
        if value is not None:
            config[key] = value
    for key in ("clients", "capacity", "storm", "latency_clients", "procs", "window",
                "bigroom_clients", "rooms_clients", "rooms_count", "rooms_senders"):
        if config[key] < 1:
            raise SystemExit(f"--{key.replace('_', '-')} must be at least 1")
    for key in ("senders", "latency_senders"):
        if config[key] < 1:
            raise SystemExit(f"--{key.replace('_', '-')} must be at least 1")
    if config["senders"] > config["clients"] or config["latency_senders"] > config["latency_clients"]:
        raise SystemExit("there cannot be more senders than clients")
    return config


def build_servers(args: argparse.Namespace) -> List[Server]:
    """The servers to measure, from --target or --servers."""
    if args.target:
        host, _, port = args.target.rpartition(":")
        if not (port.isascii() and port.isdigit()):
            raise SystemExit("--target wants HOST:PORT, for example 127.0.0.1:8123")
        server = Server("target", host=host or "127.0.0.1", port=int(port),
                        pid=args.target_pid, dialect=args.target_protocol)
        server.label = f"target {args.target}"
        return [server]
    servers = []
    for item in args.servers.split(","):
        name, _, python = item.strip().partition("=")
        if not name:
            continue
        known = ALL_SERVERS + tuple(VARIANTS)
        if name not in known:
            raise SystemExit(f"unknown server {name!r}: choose from {', '.join(known)}")
        if name == "ngircd" and python:
            raise SystemExit("ngircd is not a Python server: NAME=PYTHON does not apply")
        kind, extra = VARIANTS.get(name, (name, []))
        server = Server(kind, python=python or args.server_python, extra_options=extra,
                        dialect=VARIANT_DIALECTS.get(name))
        if name != kind:
            server.label = server.label.replace(kind, name, 1)
        servers.append(server)
    labels = [s.label for s in servers]
    for i, server in enumerate(servers):  # the same server twice, under two pythons
        if labels.count(server.label) > 1:
            server.label += f"#{labels[:i + 1].count(server.label)}"
    return servers


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; return the exit status (1 if chatservice lost anything or failed)."""
    args = parse_args(argv)
    if args.words_server is not None:
        run_words_server(args.words_server)
        return 0
    config = build_config(args)
    rates = parse_rates(args.curve) if args.curve else None
    workloads = (["latency"] if rates else
                 [w.strip() for w in args.workloads.split(",") if w.strip()])
    for w in workloads:
        if w not in ALL_WORKLOADS + EXTRA_WORKLOADS:
            raise SystemExit(f"unknown workload {w!r}: choose from "
                             f"{', '.join(ALL_WORKLOADS + EXTRA_WORKLOADS)}")
    progress = Progress(args.progress or sys.stderr.isatty())
    raise_nofile_limit()
    servers = build_servers(args)
    results: Dict[str, Dict[str, Any]] = {}
    runnable = []
    for server in servers:
        problem = server.check() if not server.external else None
        if problem:
            progress.note(f"[{server.label}] {problem}")
            results[server.label] = {w: {"skipped": problem} for w in workloads}
        else:
            runnable.append(server)
    env = environment(servers, config["procs"])
    progress.note(f"chatservice.bench: {', '.join(s.label for s in runnable) or 'no server'}; "
                  f"{', '.join(workloads)}; {config['procs']} generator process(es)")
    pool = WorkerPool(config["procs"]) if runnable else None
    bench = Bench(config, pool, progress) if pool else None
    status = 0
    curves: Dict[str, List[Dict[str, Any]]] = {}
    runs = ([("latency", rate) for rate in rates] if rates
            else [(workload, None) for workload in workloads])
    try:
        for server in runnable:
            results[server.label] = {}
            curves[server.label] = []
            for workload, rate in runs:
                if rate is not None:
                    config["rate"] = rate
                try:
                    result = bench.run(server, workload)
                except BenchError as e:
                    result = {"error": str(e)}
                    progress.note(f"[{server.label}] {workload}: FAILED: {e}")
                else:
                    progress.note(f"[{server.label}] {workload}: {summary_line(workload, result)}")
                if rate is None:
                    results[server.label][workload] = result
                else:
                    results[server.label][f"latency at {rate:,.0f}/s"] = result
                    curves[server.label].append(point(rate, result))
                if server.kind in ("chatservice", "target") and (
                        "error" in result or result.get("lost")):
                    status = 1
    except KeyboardInterrupt:
        progress.note("interrupted")
        status = 130
    finally:
        for server in runnable:
            server.stop()
        if pool is not None:
            pool.close()
    labels = [s.label for s in servers]
    reference = labels[0] if len(labels) > 1 else None
    env["servers"] = {s.label: s.describe() for s in servers}  # options as run
    report = dict(env, benchmark="python -m chatservice.bench", config=config,
                  workloads=workloads, results=results,
                  ratios=compute_ratios(results, reference) if reference and not rates else {})
    if rates:
        report["curve"] = curves
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    if rates:
        plot = args.plot or (args.json.rsplit(".", 1)[0] + ".png" if args.json
                             else "latency-curve.png")
        why_not = plot_curves(curves, plot, f"delivery latency, {config['latency_clients']:,} "
                                            "clients in one room")
        print(format_curves(curves))
        print(f"plot: {why_not or plot}")
        print()
        print(json.dumps(report, indent=1, default=str))
        return status
    print(format_table(results, labels, config, reference))
    print()
    print(json.dumps(report, indent=1, default=str))
    return status
