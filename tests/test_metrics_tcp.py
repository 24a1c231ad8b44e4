"""
The metrics port of a real C{twistd -n chat --metrics-port tcp:0}: its port
read from the log, C{/metrics} scraped over HTTP and parsed with
prometheus-client's parser while real clients log in, talk, flood,
send over-long lines and stop reading; C{/healthz}; C{/readyz} going to 503 while another
program holds the database's write lock, and back.
"""

import re
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from twistd_process import (
    ANY_PORT,
    COMMAND_TIMEOUT,
    log_in,
    start_daemon,
    start_twistd,
    twistd_command,
    twistd_env,
)

#: Seconds to wait for the server to show a change.
TIMEOUT = 20


def metrics_port(server) -> int:
    """The metrics port, from the server's "metrics listening on" log line."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = re.search(r"metrics listening on .*port=(\d+)", server.log())
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    pytest.fail(f"no 'metrics listening on' line in the log:\n{server.log()}")


def get(port: int, path: str):
    """GET C{path}; return (status, content type, body)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT) as answer:
            return answer.status, answer.headers["content-type"], answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["content-type"], e.read().decode()


def scrape(port: int):
    """One scrape of /metrics as C{{(name, sorted labels): value}}."""
    status, kind, text = get(port, "/metrics")
    assert status == 200 and kind.startswith("text/plain; version=0.0.4"), (status, kind)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples}


def wait_for(port: int, check, what: str):
    """Scrape until C{check(metrics)} is true; return those metrics."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = scrape(port)
        if check(found):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not seen within {TIMEOUT} s in {found}")
        time.sleep(0.1)


LINE = (("frontend", "line"),)


def reason(value: str):
    return (("reason", value),)


def test_metrics_count_what_clients_do(tmp_path):
    """Logins, lines by kind, deliveries, a flood kick, an over-long-line disconnect, a full server."""
    server = start_twistd(tmp_path, "--metrics-port", "tcp:0", "--flood-burst", "8",
                          "--flood-rate", "1", "--flood-kick", "3", "--max-line-length", "100",
                          "--max-long-lines", "1", "--max-connections", "4")
    clients = []
    try:
        port = metrics_port(server)
        assert get(port, "/healthz")[::2] == (200, "ok\n")
        assert get(port, "/readyz")[::2] == (200, "ready\n")
        start = scrape(port)
        assert start[("chatservice_users", LINE)] == 0
        assert start[("chatservice_max_connections", ())] == 4
        assert start[("process_resident_memory_bytes", ())] > 0
        assert start[("process_open_fds", ())] > 0
        alice, bob = server.connect(), server.connect()
        clients += [alice, bob]
        log_in(alice, "alice")
        log_in(bob, "bob")
        alice.say("hello", "/me waves", "/msg bob psst")
        bob.expect("<alice> hello")
        bob.expect("* alice waves")
        bob.expect(lambda line: "psst" in line)
        found = wait_for(port, lambda m: m[("chatservice_lines_total", (("kind", "private"),))] == 1,
                         "the private message")
        assert found[("chatservice_users", LINE)] == 2
        assert found[("chatservice_connections", LINE)] == 2
        assert found[("chatservice_logins_total", ())] == 2
        assert found[("chatservice_lines_total", (("kind", "say"),))] == 1
        assert found[("chatservice_lines_total", (("kind", "act"),))] == 1
        assert found[("chatservice_deliveries_total", ())] >= 2
        assert found[("chatservice_delivered_bytes_total", ())] >= len(
            "<alice> hello\r\n* alice waves\r\n")

        flooder = server.connect()
        clients.append(flooder)
        log_in(flooder, "flooder")
        flooder.say(*["spam"] * 40)
        flooder.expect("-- You were disconnected for flooding.")
        flooder.expect_eof()
        longer = server.connect()
        clients.append(longer)
        log_in(longer, "longer")
        longer.say("x" * 200, "y" * 200)
        longer.expect("-- You were disconnected for sending too many over-long lines.")
        longer.expect_eof()
        found = wait_for(port, lambda m: m[("chatservice_connections", LINE)] == 2,
                         "the flooder and the long-liner gone")
        assert found[("chatservice_disconnects_total", reason("flood"))] == 1
        assert found[("chatservice_disconnects_total", reason("long_lines"))] == 1
        assert found[("chatservice_disconnects_total", reason("sendq"))] == 0

        more = [server.connect(), server.connect()]
        clients += more
        for client in more:
            client.expect("What's your name?")
        refused = server.connect()
        clients.append(refused)
        refused.expect(lambda line: "The server is full" in line)
        found = wait_for(port, lambda m: m[("chatservice_connections_refused_total",
                                            reason("server_full"))] == 1, "the refusal")
        assert found[("chatservice_connections", LINE)] == 4
        assert found[("chatservice_logins_total", ())] == 4
        found = wait_for(port, lambda m: m[("chatservice_database_lines_written_total", ())] > 0
                         and m[("chatservice_event_loop_lag_seconds_count", ())] > 0,
                         "history written and the loop lag measured")
        assert found[("chatservice_database_up", ())] == 1
        assert found[("chatservice_database_writes_dropped_total", ())] == 0
        assert found[("chatservice_database_commit_seconds_count", ())] >= 1
        assert "HTTP" not in server.log() and "GET /metrics" not in server.log()
    finally:
        for client in clients:
            client.close()
        server.stop()


def test_readyz_fails_while_the_database_is_locked(tmp_path):
    """Another program holding the write lock fails the writer's batch: 503 with why, then 200 again."""
    server = start_twistd(tmp_path, "--metrics-port", "tcp:0")
    alice = None
    blocker = None
    try:
        port = metrics_port(server)
        alice = server.connect()
        log_in(alice, "alice")
        assert get(port, "/readyz")[::2] == (200, "ready\n")
        blocker = sqlite3.connect(str(tmp_path / "data" / "chatservice" / "chat.db"),
                                  isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the write lock, as a backup or a sqlite3 shell could
        alice.say("hello while locked")
        deadline = time.monotonic() + TIMEOUT
        while True:
            status, kind, body = get(port, "/readyz")
            if status == 503:
                break
            assert time.monotonic() < deadline, "/readyz still 200 with the database locked"
            time.sleep(0.2)
        assert kind.startswith("text/plain")
        assert body.startswith("not ready: the database cannot write: ")
        assert "locked" in body and body.count("\n") == 1
        found = scrape(port)
        assert found[("chatservice_database_up", ())] == 0
        assert found[("chatservice_database_batches_failed_total", ())] >= 1
        assert get(port, "/healthz")[0] == 200  # alive, only not ready
        blocker.execute("ROLLBACK")
        alice.say("hello again")
        deadline = time.monotonic() + TIMEOUT
        while get(port, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "/readyz not 200 again after the lock went"
            time.sleep(0.2)
    finally:
        if blocker is not None:
            blocker.close()
        if alice is not None:
            alice.close()
        server.stop()


def test_a_daemon_serves_metrics(tmp_path):
    """Daemonized (twistd forks after makeService), the registry and the lag monitor work in the daemon."""
    daemon = start_daemon(tmp_path, "--metrics-port", "tcp:0")
    try:
        port = metrics_port(daemon)
        with daemon.connect() as alice:
            log_in(alice, "alice")
            found = wait_for(port, lambda m: m[("chatservice_users", LINE)] == 1
                             and m[("chatservice_event_loop_lag_seconds_count", ())] > 0,
                             "alice and the loop lag")
        assert found[("process_open_fds", ())] > 0
        assert get(port, "/readyz")[::2] == (200, "ready\n")
    finally:
        daemon.stop()


def test_a_metrics_port_in_use_is_one_line_and_status_1(tmp_path):
    """A --metrics-port another program listens on stops the start with one line, exit status 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            twistd_command("-n", "--pidfile=", "chat", "--port", ANY_PORT, "--no-database",
                           "--metrics-port", f"tcp:{port}"),
            cwd=str(tmp_path), env=twistd_env(tmp_path), stdin=subprocess.DEVNULL,
            capture_output=True, timeout=COMMAND_TIMEOUT)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 1, (out, err)
    assert "Traceback" not in out + err, (out, err)
    assert err.strip().splitlines() == [
        f"twistd chat: cannot listen on --metrics-port tcp:{port}:interface=127.0.0.1: "
        f"Address already in use (another program is listening there)"], (out, err)


def test_metrics_port_option_errors(tmp_path):
    """A --metrics-port that is not tcp, tcp6 or unix is a usage error naming the option."""
    done = subprocess.run(
        twistd_command("-n", "--pidfile=", "chat", "--metrics-port", "ssl:9100"),
        cwd=str(tmp_path), env=twistd_env(tmp_path), stdin=subprocess.DEVNULL,
        capture_output=True, timeout=COMMAND_TIMEOUT)
    assert done.returncode == 1
    assert ("twistd chat: --metrics-port 'ssl:9100': use a tcp:, tcp6: or unix: endpoint, "
            "for example tcp:9100") in done.stderr.decode()


def test_a_slow_reader_is_counted_as_sendq(tmp_path):
    """A client that stops reading is dropped at --max-output: disconnects_total{reason="sendq"} goes to 1."""
    server = start_twistd(tmp_path, "--metrics-port", "tcp:0", "--flood-rate", "0",
                          "--max-output", "65536", "--no-database")
    clients = []
    try:
        port = metrics_port(server)
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", server.port))
        clients.append(slow)
        slow.sendall(b"slow\n")  # logs in, then never reads again
        talker = server.connect()
        clients.append(talker)
        log_in(talker, "talker")
        line = "z" * 1500
        deadline = time.monotonic() + TIMEOUT
        while scrape(port)[("chatservice_disconnects_total", reason("sendq"))] == 0:
            assert time.monotonic() < deadline, "the slow reader was not dropped"
            talker.say(*[line] * 200)
            talker.sync(str(time.monotonic()))
        found = scrape(port)
        assert found[("chatservice_disconnects_total", reason("sendq"))] == 1
        assert found[("chatservice_users", LINE)] == 1
    finally:
        for client in clients:
            client.close()
        server.stop()
