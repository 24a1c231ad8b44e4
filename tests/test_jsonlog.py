"""
The JSON log records (C{--log-format json}), and where they go.
"""

import io
import json
import sys

import pytest
from twisted.application.service import Application
from twisted.logger import ILogObserver, Logger
from twisted.python import usage

from chatservice.jsonlog import LoggingRoot, json_observer, twistd_log_file
from chatservice.tap import Options


def test_a_record_has_the_text_the_fields_and_a_traceback():
    """A record is one line: time, level, namespace, the formatted text, the event's plain fields (not objects), and the traceback of a failure."""
    out = io.StringIO()
    log = Logger(namespace="chat.test", observer=json_observer(out))
    log.info("login {name} from {peer}", name="ａlice", peer="127.0.0.1:5", conn=object())
    try:
        1 / 0
    except ZeroDivisionError:
        log.failure("it broke in {room}", room="#lobby")
    first, second = [json.loads(line) for line in out.getvalue().splitlines()]
    assert first["text"] == "login ａlice from 127.0.0.1:5"
    assert (first["name"], first["peer"], first["namespace"], first["level"]) == (
        "ａlice", "127.0.0.1:5", "chat.test", "info")
    assert "conn" not in first and "log_format" not in first
    assert second["level"] == "critical" and second["room"] == "#lobby"
    assert "ZeroDivisionError" in second["traceback"]
    assert "ａlice" in out.getvalue()  # UTF-8, not \\u escapes


def test_the_json_log_goes_where_twistd_logs(tmp_path):
    """Standard output under -n without --logfile (or with --logfile -), else the --logfile."""
    assert twistd_log_file({"nodaemon": True, "logfile": None}) is sys.stdout
    assert twistd_log_file({"nodaemon": True, "logfile": "-"}) is sys.stdout
    log_file = twistd_log_file({"nodaemon": False, "logfile": str(tmp_path / "chat.log")})
    log_file.write("x\n")
    log_file.close()
    assert (tmp_path / "chat.log").read_text() == "x\n"


def test_the_root_service_gives_the_application_its_log_observer():
    """Joining the twistd application sets its ILogObserver, which twistd logs through; text keeps twistd's own."""
    application = Application("chat")
    observer = json_observer(io.StringIO())
    LoggingRoot(lambda: observer).setServiceParent(application)
    assert application.getComponent(ILogObserver) is observer
    plain = Application("chat")
    LoggingRoot().setServiceParent(plain)
    assert plain.getComponent(ILogObserver, None) is None


def test_log_format_is_checked():
    """--log-format takes text or json; json with twistd's --syslog is refused."""
    options = Options()
    with pytest.raises(usage.UsageError, match="'xml' is not one of: text, json"):
        options.parseOptions(["--log-format", "xml"])

    class Twistd(dict):
        subCommand = "chat"

    options = Options()
    options.parseOptions(["--no-database", "--log-format", "json"])
    options.parent = Twistd(syslog=True)
    with pytest.raises(usage.UsageError, match="twistd's --syslog"):
        options.postOptions()
