"""
The services that own the chat's lifetime: starting the store once the
process that serves exists, listening, and saying goodbye to every
connected user when the server stops.

C{twistd} builds the service (C{makeService}), then may fork to become a
daemon, then listens (C{privilegedStartService}), then starts the services
(C{startService}), then runs the reactor.  Nothing here starts a thread or
takes a lock before C{startService}.
"""

import sys

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from .core.chat import Chat
from .persistence.store import StoreError

#: What users see when the server stops.
SHUTDOWN_MESSAGE = "The server is shutting down. Goodbye!"

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
    if getattr(cause, "errno", None) is not None and "in use" in text.lower():
        return f"{text} (another program is listening there)"
    return text


def listen_now(endpoint, factory, option: str, description: str) -> defer.Deferred:
    """
    Return C{endpoint.listen(factory)}; if it fails at once with
    L{CannotListenError} (the port is taken, or needs privileges), raise
    the one-line L{StartupFailure} for C{option} C{description} instead.
    """
    d = endpoint.listen(factory)
    refused = []
    synchronous = [True]

    def early(failure):
        if synchronous[0] and failure.check(CannotListenError):
            refused.append(failure.value)
            return None
        return failure

    d.addErrback(early)
    synchronous[0] = False
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


class ChatService(Service):
    """
    Wraps a L{Chat}: starting it starts the database (L{ChatStore.start}:
    its lock, with this process's pid, and its threads), then the chat's
    own work (L{Chat.start}: it reads the default room's recent lines);
    stopping it tells every user the server is shutting down, closes their
    connections, aborts the ones still open after the grace period (so
    C{twistd} never waits forever), and closes the database.
    """

    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    def startService(self) -> None:
        """
        Start the database, then the chat.  Raise L{StartupFailure} if the
        database was taken by another server since C{makeService} checked
        it.
        """
        store = self.chat.store
        if store is not None:
            try:
                store.start()
            except StoreError as e:
                raise cannot_start(str(e)) from None
        Service.startService(self)
        self.chat.start()

    def stopService(self) -> defer.Deferred:
        """
        Notify and disconnect everyone, then close the database (committing
        everything said); fire when both are done.
        """
        Service.stopService(self)
        chat = self.chat
        done = chat.shutdown(SHUTDOWN_MESSAGE, chat.limits.shutdown_grace)
        store = chat.store
        if store is not None:
            done.addCallback(lambda _: store.close())
        return done
