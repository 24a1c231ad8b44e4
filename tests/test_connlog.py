"""
Connection log lines: one per connection, and a summary instead of a line
each during a storm.
"""

from typing import List

import pytest
from twisted.logger import formatEvent, globalLogPublisher

from chatservice.core.connlog import CONNECTION_LOG_RATE, ConnectionLog, describe_duration


@pytest.fixture
def logged():
    """The formatted text of every event logged during the test."""
    lines: List[str] = []

    def observe(event) -> None:
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


def connection_lines(lines: List[str]) -> List[str]:
    return [line for line in lines if "connection" in line and not line.startswith("quit ")]


def test_one_line_per_connection_with_name_and_duration(connect, clock, logged):
    """A connection logs nothing when it opens and one line when it closes."""
    client = connect("alice")
    assert connection_lines(logged) == []
    clock.advance(12)
    client.lose()
    closed = connection_lines(logged)
    assert len(closed) == 1, closed
    assert "closed after 12 s (alice)" in closed[0]
    assert client.transport.getPeer().host in closed[0]


def test_a_connection_that_never_logs_in_says_so(connect, logged):
    client = connect()
    client.lose()
    [closed] = connection_lines(logged)
    assert "(never logged in)" in closed


def test_a_refused_connection_is_one_line(factory, connect, logged):
    """Refused at the door: the refusal is logged, not also its closing."""
    factory.chat.limits.max_connections = 1
    connect()
    refused = connect()
    refused.lose()
    lines = connection_lines(logged)
    assert len(lines) == 1, lines
    assert "refused connection from 127.0.0.1: The server is full" in lines[0]


def test_a_storm_is_summed_up(clock, logged):
    """Past the rate, the second's other connections become one summary line."""
    log = ConnectionLog(clock)
    for number in range(CONNECTION_LOG_RATE + 500):
        log.closed(f"127.0.0.1:{number}", 0.01, None)
    assert len(connection_lines(logged)) == CONNECTION_LOG_RATE
    clock.advance(1)
    lines = connection_lines(logged)
    assert len(lines) == CONNECTION_LOG_RATE + 1
    assert lines[-1].startswith("500 more connections closed or refused in the last 1 s")
    # the next second starts afresh
    log.closed("127.0.0.1:1", 0.01, None)
    assert len(connection_lines(logged)) == CONNECTION_LOG_RATE + 2
    clock.advance(1)
    assert len(connection_lines(logged)) == CONNECTION_LOG_RATE + 2  # nothing to sum up


def test_stop_logs_the_summary_due(clock, logged):
    log = ConnectionLog(clock, rate=1)
    log.refused("127.0.0.2", "full")
    log.refused("127.0.0.2", "full")
    log.stop()
    assert connection_lines(logged)[-1].startswith("1 more connections")
    assert not clock.getDelayedCalls()


@pytest.mark.parametrize("seconds, shown", [
    (0.25, "0.2 s"), (12, "12 s"), (300, "5 min"), (12600, "3.5 h"),
])
def test_durations(seconds, shown):
    assert describe_duration(seconds) == shown
