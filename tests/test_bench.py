"""
A smoke run of the load benchmark (C{python -m chatservice.bench}): a real
C{twistd chat} subprocess, a few clients, a few messages.  The full run is
documented in BENCHMARKS.md; this only pins down that the tool works and
that the server loses nothing.
"""

import json
import os
import subprocess
import sys

import pytest

from chatservice.bench.cli import QUICK
from chatservice.bench.dialects import MARK, ChatDialect, IrcDialect, message_lines
from chatservice.bench.report import compute_ratios, format_table
from chatservice.bench.system import proc_cpu, proc_status


def test_quick_run_against_chatservice_loses_nothing(tmp_path):
    """
    Every workload of a small run against a freshly started chatservice
    completes with every message and every login accounted for.
    """
    report_path = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    done = subprocess.run(
        [sys.executable, "-m", "chatservice.bench", "--quick", "--servers", "chatservice",
         "--clients", "8", "--senders", "2", "--messages", "20",
         "--latency-clients", "8", "--rate", "500", "--duration", "1",
         "--capacity", "50", "--storm", "50", "--procs", "1",
         "--workloads", "fanout,latency,rooms,bigroom,capacity,storm",
         "--rooms-clients", "12", "--rooms-count", "3", "--rooms-senders", "4",
         "--rooms-messages", "10",
         "--bigroom-clients", "30", "--bigroom-rate", "4",
         "--json", str(report_path)],
        capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    report = json.loads(report_path.read_text())
    # "chatservice", or "chatservice[pypy]" when the suite runs under PyPy
    [(label, results)] = report["results"].items()
    assert label.startswith("chatservice"), label
    assert set(results) == {"fanout", "latency", "rooms", "bigroom", "capacity", "storm"}, results
    for workload, result in results.items():
        assert "error" not in result, (workload, result)
        assert result["lost"] == 0, (workload, result)
    fanout = results["fanout"]
    assert fanout["deliveries"] == fanout["deliveries_expected"] == 2 * 20 * 6
    assert fanout["sender_copies"] == 2 * 20 * 1
    assert fanout["latency_samples"] > 0
    rooms = results["rooms"]  # 4 members a room; senders 0 and 3 share room 0
    assert rooms["deliveries"] == rooms["deliveries_expected"] == 10 * (2 + 3 + 3 + 2)
    assert rooms["sender_copies"] == 10 * 2
    bigroom = results["bigroom"]
    assert bigroom["deliveries"] == bigroom["messages_sent"] * 29 > 0
    assert bigroom["server_cpu_ms_per_line"] is not None
    assert results["capacity"]["logged_in"] == 50
    assert results["capacity"]["server_rss_per_connection_kib"] is not None
    assert results["storm"]["logged_in"] == 50
    assert "deliveries/s" in done.stdout  # the summary table


def test_quick_irc_run_against_our_irc_front_end_loses_nothing(tmp_path):
    """
    chatservice-irc (our IRC front end, --irc-port, in the IRC dialect that
    ngircd is measured with) completes the fan-out, latency and capacity
    workloads of a small run with nothing lost.
    """
    report_path = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    done = subprocess.run(
        [sys.executable, "-m", "chatservice.bench", "--quick", "--servers", "chatservice-irc",
         "--workloads", "fanout,latency,capacity",
         "--clients", "8", "--senders", "2", "--messages", "20",
         "--latency-clients", "8", "--rate", "500", "--duration", "1",
         "--capacity", "50", "--procs", "1", "--json", str(report_path)],
        capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    report = json.loads(report_path.read_text())
    [(label, results)] = report["results"].items()
    assert label.startswith("chatservice-irc"), label
    assert set(results) == {"fanout", "latency", "capacity"}, results
    for workload, result in results.items():
        assert "error" not in result, (workload, result)
        assert result["lost"] == 0, (workload, result)
    assert results["fanout"]["deliveries"] == results["fanout"]["deliveries_expected"] == 2 * 20 * 6
    assert results["capacity"]["logged_in"] == 50


def test_message_lines_carry_one_marker_each():
    """
    Each generated message carries exactly one marker (so receivers can count
    copies with bytes.count), a parseable send time, and the dialect's framing.
    """
    data = message_lines(IrcDialect, 3, 7, 40)
    lines = data.split(b"\r\n")[:-1]
    assert len(lines) == 3
    assert data.count(MARK) == 3
    for seq, line in enumerate(lines, 7):
        assert line.startswith(b"PRIVMSG #lobby :" + MARK)
        stamp, number, _ = line.split(b":", 1)[1][len(MARK):].split(b" ", 2)
        assert float(stamp) > 0 and int(number) == seq
    chat = message_lines(ChatDialect, 2, 0, 10)
    assert chat.count(b"\n") == 2 and b"\r" not in chat


def test_table_shows_ratios_between_servers():
    """The summary table compares every server with the first one."""
    results = {
        "chatservice": {"fanout": {"deliveries_per_second": 300.0, "lost": 0}},
        "words": {"fanout": {"deliveries_per_second": 100.0, "lost": 0}},
    }
    config = dict(QUICK)
    table = format_table(results, ["chatservice", "words"], config, "chatservice")
    assert "chatservice÷words" in table
    assert "3.00x" in table
    ratios = compute_ratios(results, "chatservice")
    assert ratios["chatservice/words"]["fanout deliveries/s"] == 3.0


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_proc_readers_see_this_process():
    """The server's memory and CPU are read from /proc (here: our own)."""
    assert proc_status(os.getpid(), "VmRSS") > 0
    assert proc_cpu(os.getpid()) >= 0
    assert proc_status(2 ** 30, "VmRSS") is None


@pytest.mark.parametrize("target", ["127.0.0.1:\u00b2", "127.0.0.1:\u2460", "127.0.0.1:", "nohost"])
def test_target_port_must_be_ascii_digits(target):
    """--target with a port that is not plain digits is a clear usage error, not a traceback."""
    from chatservice.bench.cli import build_servers, parse_args

    with pytest.raises(SystemExit) as exit:
        build_servers(parse_args(["--target", target]))
    assert str(exit.value) == "--target wants HOST:PORT, for example 127.0.0.1:8123"


@pytest.mark.parametrize("server", ["chatservice-web", "chatservice-webz"])
def test_quick_run_of_websocket_clients_loses_nothing(tmp_path, server):
    """
    chatservice-web: the same server's --web-port, with WebSocket clients
    (chatservice-webz: with permessage-deflate, as browsers); every message
    reaches every receiver, and senders see their own lines too (the page
    echoes them).
    """
    report_path = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    done = subprocess.run(
        [sys.executable, "-m", "chatservice.bench", "--quick", "--servers", server,
         "--workloads", "fanout,latency", "--clients", "8", "--senders", "2",
         "--messages", "20", "--latency-clients", "8", "--rate", "500", "--duration", "1",
         "--procs", "1", "--json", str(report_path)],
        capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    [(label, results)] = json.loads(report_path.read_text())["results"].items()
    assert label.startswith(server), label
    for workload, result in results.items():
        assert "error" not in result and result["lost"] == 0, (workload, result)
    fanout = results["fanout"]
    assert fanout["deliveries"] == fanout["deliveries_expected"] == 2 * 20 * 6
    assert fanout["sender_copies"] == 2 * 20 * 2
    assert fanout["latency_samples"] > 0


def test_the_deflate_dialect_reads_frames_cut_anywhere_and_answers_pings():
    """webz: compressed and plain frames inflated in order at every cut; pings answered."""
    from chatservice.bench.dialects import WebDeflateDialect
    from chatservice.frontends.web.deflate import deflate_frame
    from chatservice.frontends.web.frames import text_frame

    class Client:
        partial_frame = b""

        class transport:
            written = []

            @classmethod
            def write(cls, data):
                cls.written.append(data)

    texts = [b'{"type":"said","text":"%s %d"}' % (MARK + b"x" * 200, i) for i in range(4)]
    stream = (deflate_frame(text_frame(texts[0])) + text_frame(texts[1]) + b"\x89\x04ping"
              + deflate_frame(text_frame(texts[2])) + deflate_frame(text_frame(texts[3])))
    assert stream.count(MARK) == 1  # only the plain one shows its marker uncompressed
    for step in (1, 5, 64, len(stream)):
        client, out = Client(), []
        Client.transport.written = []
        for start in range(0, len(stream), step):
            out.append(WebDeflateDialect.decode(client, stream[start:start + step]))
        assert b"".join(out) == b"".join(texts) and client.partial_frame == b""
        assert Client.transport.written == [b"\x8a\x84\0\0\0\0ping"]


def test_websocket_messages_are_masked_frames_of_input():
    """Each generated WebSocket message is one masked text frame holding an input message."""
    from chatservice.bench.dialects import WebDialect
    from webclient import server_frames

    data = message_lines(WebDialect, 3, 7, 40)
    assert data.count(MARK) == 3
    # the mask key is 0: unmasked, the frames read like a server's
    unmasked = b"".join(frame[:2] + frame[6:] for frame in _split_masked(data))
    frames, rest = server_frames(unmasked)
    assert rest == b"" and len(frames) == 3
    for seq, (opcode, payload) in enumerate(frames, 7):
        message = json.loads(payload)
        assert opcode == 1 and message["type"] == "input"
        assert message["text"].split()[1] == str(seq)


def _split_masked(data: bytes):
    """The client frames (small ones) in C{data}."""
    while data:
        size = 6 + (data[1] & 0x7F)
        yield data[:size]
        data = data[size:]


def test_latency_curve_rates_table_and_plot(tmp_path):
    """--curve takes rates such as 1k,10k; the curves show as a table of p50 / p99 per server, and as a PNG where matplotlib is installed (else the reason is given)."""
    from chatservice.bench.curve import format_curves, parse_rates, plot_curves, point

    assert parse_rates("1k, 10k,2500") == [1000.0, 10000.0, 2500.0]
    with pytest.raises(SystemExit, match="not a rate"):
        parse_rates("fast")
    curves = {
        "chatservice": [point(1000.0, {"latency_p50_ms": 0.5, "latency_p99_ms": 0.9,
                                       "latency_max_ms": 2.0, "lost": 0}),
                        point(10000.0, {"latency_p50_ms": 0.6, "latency_p99_ms": 1.5,
                                        "latency_max_ms": 3.0, "lost": 2})],
        "ngircd": [point(1000.0, {"error": "no client could log in"})],
    }
    table = format_curves(curves).splitlines()
    assert table[0].split() == ["offered/s", "chatservice", "p50", "/", "p99", "(ms)",
                                "ngircd", "p50", "/", "p99", "(ms)"]
    assert table[2].split() == ["1,000", "0.50", "/", "0.90", "failed"]
    assert table[3].split() == ["10,000", "0.60", "/", "1.50,", "lost", "2", "-"]
    path = tmp_path / "curve.png"
    why_not = plot_curves(curves, str(path), "test")
    if why_not is None:
        assert path.read_bytes().startswith(b"\x89PNG")
    else:
        assert "pip install 'chatservice[bench]'" in why_not and not path.exists()
