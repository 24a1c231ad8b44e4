"""
The services that own the chat's lifetime: starting the store once the
process that serves exists, listening, reloading on C{SIGHUP}, and saying
goodbye to every connected user when the server stops.

C{twistd} builds the service (C{makeService}), then may fork to become a
daemon, then listens (C{privilegedStartService}), then starts the services
(C{startService}), then runs the reactor.  Nothing here starts a thread,
takes a lock or installs a signal handler before C{startService}.
"""

import errno
import signal
import sys
from typing import Callable, Dict, List, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from .core.chat import Chat
from .persistence.records import StoreError
from .reload import Reloader

#: What users see when the server stops.
SHUTDOWN_MESSAGE = "The server is shutting down. Goodbye!"
#: The signals that stop the server; the reactor handles the first one.
STOP_SIGNALS = ("SIGINT", "SIGTERM")
#: The signal that reloads what can be reloaded without a restart.
RELOAD_SIGNAL = "SIGHUP"

log = Logger()


class StartupFailure(SystemExit, Exception):
    """
    The server cannot start, for the one-line reason in the message.

    Raised while C{twistd} starts the services, that is after it may have
    forked into a daemon.  As an L{Exception}, C{twistd} hands it to the
    terminal that started the daemon ("An error has occurred: ...") and
    removes the pid file; as a L{SystemExit} with code 1, it then ends the
    process with exit status 1 and no traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = 1


def cannot_start(message: str, stderr=None) -> StartupFailure:
    """
    Log C{message} (why the server cannot start) as critical, write it as
    C{twistd chat: MESSAGE} to the terminal's standard error (C{stderr},
    by default the process's original one: C{twistd} has redirected
    C{sys.stderr} to the log by now), and return the L{StartupFailure} to
    raise.
    """
    log.critical("the server cannot start: {reason}", reason=message)
    stream = stderr if stderr is not None else sys.__stderr__
    if stream is not None:
        try:
            stream.write(f"twistd chat: {message}\n")
            stream.flush()
        except (OSError, ValueError):  # closed, or /dev/null gone
            pass
    return StartupFailure(message)


def cannot_listen_reason(error: CannotListenError) -> str:
    """Why listening failed, in words for the operator."""
    cause = error.socketError
    text = getattr(cause, "strerror", None) or str(cause)
    if getattr(cause, "errno", None) == errno.EADDRINUSE:
        return f"{text} (another program is listening there)"
    return text


def listen_now(endpoint, factory, option: str, description: str) -> defer.Deferred:
    """
    Return C{endpoint.listen(factory)}; if it fails at once with
    L{CannotListenError} (the port is taken, or needs privileges), raise
    the one-line L{StartupFailure} for C{option} C{description} instead.
    """
    d = endpoint.listen(factory)
    refused: List[CannotListenError] = []
    later = False

    def at_once(failure):
        if not later and failure.check(CannotListenError):
            refused.append(failure.value)
            return None
        return failure

    d.addErrback(at_once)  # runs right here if listen() has failed already
    later = True
    if refused:
        raise cannot_start(f"cannot listen on {option} {description}: "
                           f"{cannot_listen_reason(refused[0])}")
    return d


class ListeningService(StreamServerEndpointService):
    """
    Listens on one C{--port} for the chat (in L{privilegedStartService},
    before C{twistd} sheds privileges, as Twisted's own service does).  A
    port that cannot be listened on stops the start with one line (a
    L{StartupFailure}), not a traceback.

    @ivar description: the endpoint as the operator gave it.
    """

    _raiseSynchronously = True

    def __init__(self, endpoint, factory, description: str, option: str = "--port") -> None:
        super().__init__(endpoint, factory)
        self.description = description
        self.option = option

    def privilegedStartService(self) -> None:
        """Start listening; raise L{StartupFailure} if the port cannot be had."""
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            raise cannot_start(f"cannot listen on {self.option} {self.description}: "
                               f"{cannot_listen_reason(e)}") from None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class ChatService(Service):
    """
    Wraps a L{Chat} and runs its lifetime.

    Starting it starts the database (L{ChatStore.start}: its lock, with
    this process's pid, and its threads), then the chat's own work
    (L{Chat.start}: it reads the default room's recent lines), and
    installs the C{SIGHUP} handler, which reloads what can change without
    a restart (L{Reloader}).

    Stopping it tells every user the server is shutting down, closes their
    connections, aborts the ones still open after the grace period (so
    C{twistd} never waits forever), then closes the database (committing
    everything said).  While it stops, a second C{SIGINT} or C{SIGTERM}
    (the reactor handles the first) hurries the shutdown instead of
    reaching the reactor, which would raise C{ReactorNotRunning}.  Once
    stopped, the previous signal handlers are put back, unless the reactor
    itself is shutting down: the process is then about to exit, and a
    signal must not kill it before it has.

    @ivar reloader: the L{Reloader} that C{SIGHUP} runs.
    """

    def __init__(self, chat: Chat, reactor=None, motd_path: Optional[str] = None,
                 signals=signal, reloader: Optional[Reloader] = None) -> None:
        """
        @param chat: the L{Chat}.
        @param reactor: provides C{callFromThread} and
            C{addSystemEventTrigger} (the global reactor by default).
        @param motd_path: the file C{SIGHUP} re-reads the message of the day
            from (L{None}: the message was given as text), when no
            C{reloader} is given.
        @param signals: the L{signal} module, or a stand-in for tests
            (C{signal}, and the C{SIG...} numbers).
        @param reloader: what C{SIGHUP} re-reads (by default, the message
            of the day from C{motd_path}).
        """
        if reactor is None:
            from twisted.internet import reactor
        self.chat = chat
        self.reloader = reloader or Reloader(chat, motd_path=motd_path)
        self._reactor = reactor
        self._signals = signals
        self._exiting = False  # the reactor is shutting down
        self._hurried = False
        self._trigger = None
        # signal number -> the handler it had before this service's
        self._previous: Dict[int, object] = {}

    # -- starting ------------------------------------------------------------

    def startService(self) -> None:
        """
        Start the database and the chat, and install the C{SIGHUP}
        handler.  Raise L{StartupFailure} if the database was taken by
        another server since C{makeService} checked it.
        """
        store = self.chat.store
        if store is not None:
            try:
                store.start()
            except StoreError as e:
                raise cannot_start(str(e)) from None
        Service.startService(self)
        self._exiting = self._hurried = False
        self.chat.start()
        self._install(RELOAD_SIGNAL, self._hangup)
        self._trigger = self._reactor.addSystemEventTrigger(
            "before", "shutdown", self._reactor_stopping)

    def _install(self, name: str, handler: Callable) -> None:
        number = getattr(self._signals, name, None)
        if number is None or number in self._previous:
            return
        try:
            self._previous[number] = self._signals.signal(number, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass

    def _guard_stop_signals(self) -> None:
        for name in STOP_SIGNALS:
            self._install(name, self._stop_signal)

    def _reactor_stopping(self) -> None:
        # Runs before this service's stopService when the reactor stops.
        self._trigger = None
        self._exiting = True
        self._guard_stop_signals()

    def _restore_signals(self) -> None:
        previous, self._previous = self._previous, {}
        for number, handler in previous.items():
            try:
                self._signals.signal(number, handler)
            except (ValueError, TypeError):
                pass

    # -- signals: these run in the signal handler, between two bytecodes -----

    def _hangup(self, number: int, frame) -> None:
        self._reactor.callFromThread(self.reload)

    def _stop_signal(self, number: int, frame) -> None:
        self._reactor.callFromThread(self._hurry, number)

    # -- on the reactor thread ------------------------------------------------

    def reload(self) -> None:
        """
        What C{SIGHUP} does (see L{Reloader.reload}): re-read the message of
        the day, the settings file and the admin credential files, put in
        force what can change live, and log what changed.  No connection
        is dropped.
        """
        self.reloader.reload()

    def _hurry(self, number: int) -> None:
        name = _signal_name(number)
        if not self.chat.shutting_down:
            self._hurried = True  # the shutdown has not begun: it gets no grace
            log.warn("{signal} received: already shutting down; connections will "
                     "not get the grace period", signal=name)
            return
        open_now = list(self.chat.clients)
        if not open_now:
            log.warn("{signal} received: already shutting down; no connection is "
                     "left open", signal=name)
            return
        log.warn("{signal} received: already shutting down; aborting the {count} "
                 "connection(s) still open", signal=name, count=len(open_now))
        for client in open_now:
            client.abort()

    # -- stopping -------------------------------------------------------------

    def stopService(self) -> defer.Deferred:
        """
        Notify and disconnect everyone, then close the database (committing
        everything said), then restore the signal handlers unless the
        process is about to exit; fire when all is done.
        """
        Service.stopService(self)
        self._guard_stop_signals()
        chat = self.chat
        grace = 0 if self._hurried else chat.limits.shutdown_grace
        done = chat.shutdown(SHUTDOWN_MESSAGE, grace)
        store = chat.store
        if store is not None:
            done.addCallback(lambda _: store.close())

        def restore(result):
            if not self._exiting:
                if self._trigger is not None:
                    self._reactor.removeSystemEventTrigger(self._trigger)
                    self._trigger = None
                self._restore_signals()
            return result

        return done.addBoth(restore)
