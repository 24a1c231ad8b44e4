"""
The JSON log (C{twistd chat --log-format json}): one JSON object per line,
for log shippers (journald's, Vector, Fluent Bit, Loki's promtail...).

Each object has C{time} (ISO 8601, UTC), C{level}, C{namespace} (the
module or class that logged), C{text} (the line the text log would show),
the event's own fields that are plain values (C{name}, C{room},
C{peer}...), and C{traceback} when an error carried one.  It goes where
twistd's own log goes: C{--logfile} (rotated as twistd rotates it), or
standard output under C{-n} without one.
"""

import json
import sys
from datetime import datetime, timezone
from typing import IO, Any, Callable, Dict, Optional

from twisted.application.service import MultiService
from twisted.logger import FileLogObserver, ILogObserver, formatEvent
from twisted.python.logfile import LogFile

#: The choices of --log-format.
LOG_FORMATS = ("text", "json")
#: Field types copied into a JSON record as they are.
PLAIN = (str, int, float, bool, type(None))


def json_record(event: Dict[str, Any]) -> str:
    """Return C{event} as one line of JSON, newline included."""
    when = event.get("log_time")
    record: Dict[str, Any] = {
        "time": None if when is None else datetime.fromtimestamp(
            when, timezone.utc).isoformat(timespec="milliseconds"),
        "level": getattr(event.get("log_level"), "name", None),
        "namespace": event.get("log_namespace"),
        "text": formatEvent(event),
    }
    for key, value in event.items():
        if not key.startswith("log_") and key not in record and isinstance(value, PLAIN):
            record[key] = value
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    return json.dumps(record, ensure_ascii=False) + "\n"


def json_observer(out: IO[Any]) -> FileLogObserver:
    """A log observer writing L{json_record} lines to C{out}."""
    return FileLogObserver(out, json_record)


def twistd_log_file(twistd_options: Optional[Dict[str, Any]]) -> IO[Any]:
    """
    Open where twistd would log, given its options: standard output
    under C{-n} with no C{--logfile} (or C{--logfile -}), else the
    C{--logfile} (C{twistd.log} by default) as a L{LogFile}.
    """
    options = twistd_options or {}
    path, nodaemon = options.get("logfile"), options.get("nodaemon")
    if path == "-" or (nodaemon and not path):
        return sys.stdout
    return LogFile.fromFullPath(path or "twistd.log")


class LoggingRoot(MultiService):
    """
    The top service of C{twistd chat}: when it joins the twistd
    application it gives the application the log observer C{--log-format}
    asks for, which twistd then logs through instead of its own.
    """

    def __init__(self, observer_factory: Optional[Callable[[], ILogObserver]] = None) -> None:
        super().__init__()
        self.observer_factory = observer_factory

    def setServiceParent(self, parent) -> None:
        """Join C{parent}; if it is the application, set its log observer."""
        if self.observer_factory is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.observer_factory())
        super().setServiceParent(parent)
