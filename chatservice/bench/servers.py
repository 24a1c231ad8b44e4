"""
The servers under test: chatservice (C{twistd chat}), Twisted's own IRC
server (C{twisted.words}) and ngircd, each started as a fresh subprocess,
or one already running (C{--target}).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from chatservice.bench.errors import BenchError
from chatservice.bench.system import free_port, proc_cpu, proc_status, raise_nofile_limit


def _preexec() -> None:
    raise_nofile_limit()


def _python_label(python: str) -> Tuple[str, str]:
    """Return (implementation, version) of interpreter C{python}, e.g. ('pypy', '3.9.16')."""
    try:
        out = subprocess.run(
            [python, "-c", "import platform, sys; print(platform.python_implementation(),"
             " platform.python_version())"],
            capture_output=True, text=True, timeout=60).stdout.split()
        return out[0].lower(), out[1]
    except Exception:
        return "python", "?"


#: How to run twistd with a given interpreter (C{python -m twisted} is the
#: newer C{twist} runner, which has no C{-n}).
TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"
#: What Twisted logs when the chat listens on a TCP port.
LISTENING = re.compile(r"\bChatFactory starting on (\d+)$", re.MULTILINE)
#: ...and on its --web-port (the WebSocket dialect's clients connect there).
WEB_LISTENING = re.compile(r"\bWebSite starting on (\d+)$", re.MULTILINE)
#: The same for the IRC front end (C{--irc-port}).
IRC_LISTENING = re.compile(r"\bIRCFactory starting on (\d+)$", re.MULTILINE)


def find_ngircd() -> Optional[str]:
    """Return the path of the ngircd binary, or None if it is not installed."""
    return (shutil.which("ngircd")
            or next((p for p in ("/usr/sbin/ngircd", "/usr/local/sbin/ngircd")
                     if os.access(p, os.X_OK)), None))


class Server:
    """
    A server under test: how to start it (or that it is already running),
    which dialect it speaks, and where to read its memory and CPU.

    @ivar kind: C{chatservice}, C{words}, C{ngircd} or C{target}.
    @ivar label: the name shown in the report.
    @ivar extra_options: more C{twistd chat} options for a chatservice
        server (for example C{--no-database}).
    """

    def __init__(self, kind: str, python: Optional[str] = None,
                 host: str = "127.0.0.1", port: Optional[int] = None,
                 pid: Optional[int] = None, dialect: Optional[str] = None,
                 extra_options: Sequence[str] = ()) -> None:
        self.kind = kind
        self.extra_options = list(extra_options)
        self.python = python or sys.executable
        self.host = host
        self.port = port
        self.pid = pid
        self.dialect = dialect or ("chat" if kind == "chatservice" else "irc")
        self.proc: Optional[subprocess.Popen] = None
        self.backlog: Optional[int] = None
        self.workdir: Optional[str] = None
        self.logpath: Optional[str] = None
        self.options: List[str] = []
        self.version = ""
        impl = ""
        if kind in ("chatservice", "words"):
            impl, pyversion = _python_label(self.python)
            self.version = f"{impl} {pyversion}"
        self.label = kind if impl in ("", "cpython") else f"{kind}[{impl}]"

    @property
    def external(self) -> bool:
        """Whether the server was started by someone else (C{--target})."""
        return self.kind == "target"

    def describe(self) -> Dict[str, Any]:
        """What the report says about this server."""
        return {"kind": self.kind, "label": self.label, "dialect": self.dialect,
                "version": self.version, "python": self.python
                if self.kind in ("chatservice", "words") else None,
                "options": self.options, "listen_backlog": self.backlog}

    def check(self) -> Optional[str]:
        """Return why this server cannot run here, or None; fill in versions."""
        if self.kind == "ngircd":
            binary = find_ngircd()
            if binary is None:
                return "ngircd is not installed (Debian package 'ngircd'); skipped"
            self.binary = binary
            out = subprocess.run([binary, "--version"], capture_output=True, text=True)
            self.version = (out.stdout or out.stderr).splitlines()[0] if (
                out.stdout or out.stderr) else "ngircd"
        elif self.kind == "chatservice":
            out = subprocess.run([self.python, "-c", TWISTD, "chat", "--help"],
                                 capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                return ("'twistd chat' does not run with " + self.python + ": "
                        + (out.stderr.strip().splitlines() or ["?"])[-1])
            self.help_text = out.stdout
            ver = subprocess.run(
                [self.python, "-c", "import chatservice, twisted; "
                 "print(chatservice.__version__, twisted.__version__)"],
                capture_output=True, text=True).stdout.split()
            if len(ver) == 2:
                self.version += f", chatservice {ver[0]}, Twisted {ver[1]}"
        elif self.kind == "words":
            ver = subprocess.run(
                [self.python, "-c", "import twisted.words, twisted; print(twisted.__version__)"],
                capture_output=True, text=True)
            if ver.returncode != 0:
                return "twisted.words does not import with " + self.python
            self.version += f", Twisted {ver.stdout.strip()}"
        return None

    # -- lifetime ------------------------------------------------------------

    def start(self) -> None:
        """Start a fresh server process and wait until it accepts connections."""
        if self.external:
            return
        self.workdir = tempfile.mkdtemp(prefix=f"chatbench-{self.kind}-")
        # chatservice listens on a port the kernel picks and logs which
        # (_wait_ready reads it); ngircd and twisted.words need one given.
        self.port = None if self.kind == "chatservice" else free_port()
        self.logpath = os.path.join(self.workdir, "server.log")
        cmd = getattr(self, "_cmd_" + self.kind)()
        log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, preexec_fn=_preexec,
                                     cwd=self.workdir)
        log.close()
        self.pid = self.proc.pid
        self._wait_ready(30.0)

    def _cmd_chatservice(self) -> List[str]:
        options = ["--port", "tcp:0:interface=127.0.0.1"]
        wanted = [("--flood-rate", "0"), ("--busy-room-deliveries", "0"),
                  ("--max-connections", "0"),
                  ("--max-per-address", "0"), ("--max-output", "0"),
                  ("--login-timeout", "0"), ("--data-dir", self.workdir)]
        for option, value in wanted:
            if option + "=" in getattr(self, "help_text", ""):
                options += [option, value]
        options += self.extra_options
        self.options = options[2:]
        return [self.python, "-c", TWISTD, "-n", "--pidfile=",
                "--logfile", self.logpath, "chat"] + options

    def _cmd_words(self) -> List[str]:
        self.options = ["InMemoryWordsRealm(createGroupOnRequest=True)", "any password"]
        return [self.python, "-m", "chatservice.bench", "--words-server", str(self.port)]

    def _cmd_ngircd(self) -> List[str]:
        conf = os.path.join(self.workdir, "ngircd.conf")
        limits = {"MaxConnections": "0", "MaxConnectionsIP": "0", "MaxJoins": "0",
                  "MaxNickLength": "31", "MaxPenaltyTime": "0",
                  "PingTimeout": "3600", "PongTimeout": "3600"}
        options = {"DNS": "no", "Ident": "no", "PAM": "no"}

        def write() -> None:
            """Write the config file from C{limits} and C{options}."""
            with open(conf, "w") as f:
                f.write("[Global]\n  Name = bench.chatservice.test\n"
                        "  Info = chatservice benchmark\n  Listen = 127.0.0.1\n"
                        f"  Ports = {self.port}\n  MotdPhrase = benchmark\n"
                        # the PASS every IRC client sends (twisted.words wants one)
                        "  Password = bench\n[Limits]\n")
                f.writelines(f"  {k} = {v}\n" for k, v in limits.items())
                f.write("[Options]\n")
                f.writelines(f"  {k} = {v}\n" for k, v in options.items())

        write()
        test = subprocess.run([self.binary, "--configtest", "-f", conf],
                              capture_output=True, text=True, input="\n")
        for key in list(limits) + list(options):
            if f"nknown variable \"{key}\"" in test.stdout + test.stderr:
                limits.pop(key, None)
                options.pop(key, None)
        write()
        self.options = [f"{k}={v}" for k, v in {**limits, **options}.items()]
        return [self.binary, "-n", "-f", conf]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BenchError(f"{self.label} exited at start:\n{self.log_tail()}")
            if self.port is None:
                self.port = self._logged_port()
                if self.port is None:
                    time.sleep(0.1)
                    continue
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if self.dialect == "chat":
                        s.settimeout(5)
                        s.recv(100)
                    return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"{self.label} did not accept connections in {timeout:g} s:\n"
                         + self.log_tail())

    def _logged_port(self) -> Optional[int]:
        """The port twistd says the chat listens on ("ChatFactory starting on PORT"), if yet."""
        try:
            with open(self.logpath, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        pattern = {"web": WEB_LISTENING, "webz": WEB_LISTENING, "irc": IRC_LISTENING}.get(self.dialect, LISTENING)
        found = pattern.search(text)
        return int(found.group(1)) if found else None

    def listen_backlog(self) -> Optional[int]:
        """
        The listening socket's accept-queue size (C{ss} shows it as Send-Q),
        or None if it cannot be read.
        """
        if self.port is None or shutil.which("ss") is None:
            return None
        try:
            out = subprocess.run(["ss", "-Hltn", f"sport = :{self.port}"],
                                 capture_output=True, text=True, timeout=10).stdout
            return int(out.split()[2])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return None

    def log_tail(self, lines: int = 15) -> str:
        """The end of the server's log, for error messages."""
        try:
            with open(self.logpath, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 4000))
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def stop(self) -> None:
        """Stop the server process (TERM, then KILL) and remove its files."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        if self.workdir and not os.environ.get("CHATBENCH_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def rss(self) -> Optional[int]:
        """The server's resident memory in bytes, if its pid is known."""
        return proc_status(self.pid, "VmRSS") if self.pid else None

    def hwm(self) -> Optional[int]:
        """The server's peak resident memory in bytes, if its pid is known."""
        return proc_status(self.pid, "VmHWM") if self.pid else None

    def cpu(self) -> Optional[float]:
        """CPU seconds the server has used, if its pid is known."""
        return proc_cpu(self.pid) if self.pid else None


def run_words_server(port: int) -> None:
    """
    Run Twisted's own IRC server (C{twisted.words}) on 127.0.0.1:C{port}:
    an in-memory realm that creates rooms on JOIN and a checker that lets
    anyone in with any password.
    """
    raise_nofile_limit()
    from twisted.cred import checkers, credentials, portal
    from twisted.internet import defer, reactor
    from twisted.words import service
    from zope.interface import implementer

    @implementer(checkers.ICredentialsChecker)
    class AnyoneChecker:
        """Accepts every user name with every password."""

        credentialInterfaces = (credentials.IUsernamePassword,)

        def requestAvatarId(self, creds):
            """Let C{creds} in, whatever the password."""
            return defer.succeed(creds.username)

    realm = service.InMemoryWordsRealm("bench.local")
    realm.createGroupOnRequest = True
    factory = service.IRCFactory(realm, portal.Portal(realm, [AnyoneChecker()]))
    reactor.listenTCP(port, factory, interface="127.0.0.1")
    reactor.run()
