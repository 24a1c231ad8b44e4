"""
The periodic "stats:" line in the log, driven by a fake clock.
"""

import pytest_twisted
from twisted.logger import Logger, formatEvent

from chatservice.statslog import StatsLogService


def stats_lines(clock, factory, interval=60.0):
    """Start a stats service on C{factory}; return it and the list its lines go to."""
    events = []
    service = StatsLogService(factory.chat, interval)
    service.log = Logger(observer=events.append)
    service.startService()
    return service, events


def test_first_line_after_one_interval_then_every_interval(clock, factory, connect):
    """Nothing is logged at start; one line per interval after that, until stopped."""
    service, events = stats_lines(clock, factory)
    assert events == []
    clock.advance(59)
    assert events == []
    clock.advance(1)
    assert len(events) == 1
    clock.advance(60)
    assert len(events) == 2
    service.stopService()
    clock.advance(600)
    assert len(events) == 2


def test_line_counts_users_rooms_and_traffic_since_the_last_line(clock, factory, connect):
    """The line gives who is online now and the lines, logins and refusals of the last interval only."""
    alice = connect("alice")
    service, events = stats_lines(clock, factory)
    bob = connect("bob")
    alice.send("hello", "/join rust")
    clock.advance(60)
    text = formatEvent(events[-1])
    assert text.startswith("stats: users=2 connections=2 rooms=2; last 60 s: ")
    assert " logins=1 refused=0" in text
    assert f" lines={factory.chat.lines_relayed} " in text
    assert factory.chat.lines_relayed > 0
    assert "database" not in text  # no store on this factory

    bob.lose()
    clock.advance(60)
    text = formatEvent(events[-1])
    assert text == ("stats: users=1 connections=1 rooms=2; last 60 s: lines=0 (0.0/s) "
                    "sent_kib=0 logins=0 refused=0")
    service.stopService()


@pytest_twisted.inlineCallbacks
def test_the_service_logs_stats_with_database_counters(chat):
    """twistd chat's service logs a stats line every --stats-interval, with the database's counters; 0 turns it off."""
    from twisted.logger import globalLogPublisher

    from netclient import wait_until

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        server = yield chat("--stats-interval", "0.1")
        alice = yield server.connect("alice")
        alice.say("hello")
        yield wait_until(lambda: any(
            "writes_dropped=0" in formatEvent(e) and "lines=1 " in formatEvent(e)
            for e in events))
    finally:
        globalLogPublisher.removeObserver(events.append)
    quiet = yield chat("--stats-interval", "0", "--no-database")
    assert not [s for s in quiet.service if isinstance(s, StatsLogService)]
    assert [s for s in server.service if isinstance(s, StatsLogService)]
