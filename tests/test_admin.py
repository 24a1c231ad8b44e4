"""
The admin SSH manhole: options, credentials, host key, the shell's helpers,
and end-to-end logins with OpenSSH's own client against a chat service
running in this process (on the reactor pytest-twisted runs).
"""

import contextlib
import io
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest
import pytest_twisted
from twisted.conch.ssh import keys
from twisted.internet import defer, endpoints, protocol, threads
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python import usage
from twisted.python.components import Componentized

from chatservice import passwords
from chatservice.admin import credentials, hostkey, namespace, ssh
from chatservice.admin import service as admin_service
from chatservice.tap import Options, makeService

ROOT = Path(__file__).resolve().parent.parent
#: Seconds any single wait in these tests may take before it fails.
TIMEOUT = 15

needs_ssh = pytest.mark.skipif(
    not (shutil.which("ssh") and shutil.which("ssh-keygen") and shutil.which("ssh-keyscan")),
    reason="OpenSSH's client is not installed (.ci/run installs it)")

_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[()#][0-9A-Za-z]|.)")


def plain(data: bytes) -> str:
    """Terminal output as text: ANSI escapes and carriage returns removed."""
    return _ANSI.sub("", data.decode("utf-8", "replace")).replace("\r", "")


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """Generate an unencrypted SSH key pair at C{path}; return the private key's path."""
    extra = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", "test",
                    "-f", str(path)], check=True, timeout=TIMEOUT)
    return path


def ssh_command(port: int, *options: str, user: str = "admin") -> List[str]:
    """An OpenSSH client command line that ignores every local configuration."""
    return ["ssh", "-tt", "-F", "/dev/null", "-p", str(port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=10", *options, f"{user}@127.0.0.1"]


def key_options(key: Path) -> List[str]:
    """ssh options to log in with exactly C{key} and nothing else."""
    return ["-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "PreferredAuthentications=publickey"]


def password_env(tmp_path: Path, password: str) -> dict:
    """Environment making ssh read C{password} from an askpass script."""
    script = tmp_path / f"askpass-{len(list(tmp_path.glob('askpass-*')))}"
    script.write_text(f"#!/bin/sh\necho '{password}'\n")
    script.chmod(0o700)
    env = dict(os.environ, SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force")
    env.pop("DISPLAY", None)
    return env


PASSWORD_OPTIONS = ["-o", "PreferredAuthentications=password",
                    "-o", "NumberOfPasswordPrompts=1", "-o", "PubkeyAuthentication=no"]


class Terminal(protocol.ProcessProtocol):
    """
    A child process (ssh) whose output is watched for expected text; its
    input can be written to or closed.
    """

    def __init__(self, reactor) -> None:
        self.reactor = reactor
        self.output = b""
        self._waiters: List[tuple] = []
        self.ended = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        """Collect output and wake up the waiters whose text has come."""
        self.output += data
        self._check()

    errReceived = outReceived

    def _check(self) -> None:
        text = plain(self.output)
        for waiter in list(self._waiters):
            needle, start, d = waiter
            if needle in text[start:]:
                self._waiters.remove(waiter)
                d.callback(text)

    def text(self) -> str:
        """The output so far, as plain text."""
        return plain(self.output)

    def wait_for(self, needle: str, after: int = 0) -> defer.Deferred:
        """Fire once C{needle} appears in the output (past offset C{after})."""
        d = defer.Deferred()
        self._waiters.append((needle, after, d))
        self._check()

        def timed_out(failure):
            failure.trap(defer.TimeoutError)
            raise AssertionError(f"{needle!r} never came; output was:\n{self.text()}")

        return d.addTimeout(TIMEOUT, self.reactor).addErrback(timed_out)

    def type(self, line: str) -> int:
        """Type a line (ending it with Enter); return the output offset before it."""
        start = len(self.text())
        self.transport.write(line.encode("utf-8") + b"\r")
        return start

    def processEnded(self, reason) -> None:
        """Fire L{ended} with the exit code."""
        code = reason.value.exitCode if reason.check(ProcessDone, ProcessTerminated) else None
        self.ended.callback(code)

    def kill(self) -> None:
        """Kill the process if it still runs."""
        if not self.ended.called:
            try:
                self.transport.signalProcess("KILL")
            except Exception:
                pass


def spawn(reactor, argv: List[str], env: Optional[dict] = None) -> Terminal:
    """Start C{argv} as a child process with piped input and output."""
    terminal = Terminal(reactor)
    reactor.spawnProcess(terminal, argv[0], argv, env=env or dict(os.environ),
                         path=str(ROOT), usePTY=False)
    return terminal


async def finish(reactor, terminal: Terminal) -> Optional[int]:
    """Wait (with a timeout) for C{terminal} to exit; return its exit code."""
    try:
        return await terminal.ended.addTimeout(TIMEOUT, reactor)
    finally:
        terminal.kill()


def run(argv: List[str], env: Optional[dict] = None, stdin: bytes = b"") -> defer.Deferred:
    """Run a command to completion in a thread (the reactor keeps serving)."""
    return threads.deferToThread(
        subprocess.run, argv, input=stdin, capture_output=True, timeout=TIMEOUT,
        env=env, cwd=str(ROOT))


class ChatClient(protocol.Protocol):
    """A chat user connected over a real socket."""

    def __init__(self, reactor) -> None:
        self.reactor = reactor
        self.data = b""
        self.closed = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        """Collect what the server says."""
        self.data += data

    def connectionLost(self, reason=None) -> None:
        """Fire L{closed}."""
        self.closed.callback(None)

    def lines(self) -> List[str]:
        """The lines received so far."""
        return self.data.decode("utf-8", "replace").splitlines()


@pytest.fixture
def admin_log():
    """Collect the admin module's log messages while a test runs."""
    events = []

    def observe(event):
        if event.get("log_namespace", "").startswith("chatservice.admin"):
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def messages(events) -> List[str]:
    """The formatted log messages."""
    return [formatEvent(event) for event in events]


def options(tmp_path: Path, *args: str) -> Options:
    """Parse C{twistd chat} options with the data directory in C{tmp_path}."""
    parsed = Options()
    parsed.parseOptions(["--data-dir", str(tmp_path / "data"), *args])
    return parsed


async def start(reactor, tmp_path: Path, *args: str):
    """
    Start the chat in this process: its port is a UNIX socket in C{tmp_path},
    the admin port an ephemeral loopback TCP port.  Return the top service,
    the admin port number and the chat socket's path.
    """
    sock = tmp_path / "chat.sock"
    top = makeService(options(
        tmp_path, "--port", f"unix:{sock}",
        "--admin-port", "tcp:0:interface=127.0.0.1", *args), reactor)
    top.startService()
    listening = await top.getServiceNamed("admin").listening.addTimeout(TIMEOUT, reactor)
    return top, listening.getHost().port, sock


async def stop(reactor, top) -> None:
    """Stop the whole service, waiting (with a timeout) until it has."""
    await defer.maybeDeferred(top.stopService).addTimeout(TIMEOUT, reactor)


async def chat_user(reactor, sock: Path, name: str) -> ChatClient:
    """Connect to the chat and log in as C{name}."""
    client = ChatClient(reactor)
    endpoint = endpoints.UNIXClientEndpoint(reactor, str(sock))
    await endpoints.connectProtocol(endpoint, client).addTimeout(TIMEOUT, reactor)
    client.transport.write(name.encode() + b"\n")
    await eventually(reactor, lambda: any("welcome to" in line for line in client.lines()))
    return client


async def eventually(reactor, condition) -> None:
    """Wait (polling, with a timeout) until C{condition()} is true."""
    for _ in range(TIMEOUT * 20):
        if condition():
            return
        await deferLater(reactor, 0.05)
    raise AssertionError("condition never became true")


def deferLater(reactor, seconds: float) -> defer.Deferred:
    """Sleep without blocking the reactor."""
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)


# -- end to end, with OpenSSH's client ----------------------------------------------


@needs_ssh
@pytest_twisted.ensureDeferred
async def test_shell_reads_live_state_and_kicks_a_user(tmp_path, admin_log):
    """
    An operator logs in with a key over real SSH, reads live state, and
    kicks a connected chat user, who sees the reason before the connection
    closes; help() answers instead of hanging, and exit() leaves the server
    running.
    """
    from twisted.internet import reactor

    key = keygen(tmp_path / "id_admin")
    (tmp_path / "authorized_keys").write_bytes((tmp_path / "id_admin.pub").read_bytes())
    top, port, sock = await start(reactor, tmp_path, "--admin-keys",
                                  str(tmp_path / "authorized_keys"))
    ssh = None
    try:
        alice = await chat_user(reactor, sock, "alice")
        ssh = spawn(reactor, ssh_command(port, *key_options(key)))
        await ssh.wait_for(">>> ")
        assert "chatservice admin shell" in ssh.text()

        at = ssh.type('print("USERS=" + ",".join(sorted(users)), len(rooms))')
        await ssh.wait_for("USERS=alice 1", at)

        at = ssh.type("stats()")
        text = await ssh.wait_for("lines relayed", at)
        assert re.search(r"users\s+1\b", text[at:]), text[at:]

        at = ssh.type("help()")
        text = await ssh.wait_for("close_room(name, reason='')", at)
        assert "kick(name, reason='')" in text[at:]

        at = ssh.type('kick("alice", "too noisy")')
        await ssh.wait_for("Kicked alice.", at)
        await alice.closed.addTimeout(TIMEOUT, reactor)
        assert alice.lines()[-1] == "-- You have been kicked: too noisy"

        ssh.type("exit()")
        assert await finish(reactor, ssh) == 0
        factory = top.getServiceNamed("admin").factory
        await eventually(reactor, lambda: not factory.connections)
        assert top.running
        assert "alice" not in top.factory.chat.users
    finally:
        if ssh is not None:
            ssh.kill()
        await stop(reactor, top)
    logged = "\n".join(messages(admin_log))
    assert re.search(r"admin login: admin from 127\.0\.0\.1:\d+ by publickey", logged)
    assert "admin shell opened by admin" in logged


@needs_ssh
@pytest_twisted.ensureDeferred
async def test_wrong_key_is_refused_and_logged_rsa_key_works(tmp_path, admin_log):
    """
    A key that is not in the authorized_keys file is refused (and the
    refusal logged with user and peer); an RSA key that is in it logs in;
    stopping the service closes the open session.
    """
    from twisted.internet import reactor

    good = keygen(tmp_path / "id_rsa", "rsa")
    wrong = keygen(tmp_path / "id_wrong")
    (tmp_path / "authorized_keys").write_bytes((tmp_path / "id_rsa.pub").read_bytes())
    top, port, _ = await start(reactor, tmp_path, "--admin-keys",
                               str(tmp_path / "authorized_keys"))
    ssh = None
    try:
        refused = await run(ssh_command(port, *key_options(wrong)))
        assert refused.returncode == 255
        assert b"Permission denied" in refused.stderr

        ssh = spawn(reactor, ssh_command(port, *key_options(good)))
        await ssh.wait_for(">>> ")
        at = ssh.type("6 * 7")
        await ssh.wait_for("42", at)
        await stop(reactor, top)
        await finish(reactor, ssh)
    finally:
        if ssh is not None:
            ssh.kill()
        if top.running:
            await stop(reactor, top)
    logged = "\n".join(messages(admin_log))
    assert re.search(r"admin login refused: admin from 127\.0\.0\.1:\d+ by publickey",
                     logged), logged


@needs_ssh
@pytest_twisted.ensureDeferred
async def test_password_login_and_wrong_password(tmp_path, admin_log):
    """
    A password file made with the passwords command lets its user in with
    the right password; a wrong password is refused and logged, without
    the password appearing in the log; end of input ends the session.
    """
    from twisted.internet import reactor

    passwd = tmp_path / "passwd"
    made = await run([sys.executable, "-m", "chatservice.passwords", "add", "--stdin",
                      str(passwd), "ops"], stdin=b"correct horse\n",
                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    assert "correct horse" not in passwd.read_text()
    top, port, _ = await start(reactor, tmp_path, "--admin-passwd", str(passwd))
    ssh = None
    try:
        wrong = await run(ssh_command(port, *PASSWORD_OPTIONS, user="ops"),
                          env=password_env(tmp_path, "Tr0ub4dor&3"))
        assert wrong.returncode == 255
        assert b"Permission denied" in wrong.stderr

        ssh = spawn(reactor, ssh_command(port, *PASSWORD_OPTIONS, user="ops"),
                    env=password_env(tmp_path, "correct horse"))
        await ssh.wait_for(">>> ")
        at = ssh.type("sorted(rooms)")
        await ssh.wait_for("['lobby']", at)
        ssh.transport.closeStdin()  # end of input ends the shell
        assert await finish(reactor, ssh) == 0
    finally:
        if ssh is not None:
            ssh.kill()
        await stop(reactor, top)
    logged = messages(admin_log)
    assert any(re.search(r"admin login refused: ops from 127\.0\.0\.1:\d+ by password", m)
               for m in logged), logged
    assert any("admin login: ops" in m for m in logged)
    assert not any("Tr0ub4dor" in repr(event) for event in admin_log)


@needs_ssh
@pytest_twisted.ensureDeferred
async def test_host_key_is_private_and_stable_across_restarts(tmp_path):
    """
    The host key is generated into the data directory (0700) with mode 0600
    on first start, and a restart serves the same key.
    """
    from twisted.internet import reactor

    keygen(tmp_path / "id_admin")
    authorized = tmp_path / "authorized_keys"
    authorized.write_bytes((tmp_path / "id_admin.pub").read_bytes())
    seen = []
    for _ in range(2):
        top, port, _ = await start(reactor, tmp_path, "--admin-keys", str(authorized))
        try:
            scan = await run(["ssh-keyscan", "-p", str(port), "-t", "ed25519", "127.0.0.1"])
        finally:
            await stop(reactor, top)
        line = next(line for line in scan.stdout.decode().splitlines()
                    if not line.startswith("#"))
        seen.append(line.split()[1:3])
    key_file = tmp_path / "data" / hostkey.HOST_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert seen[0] == seen[1]
    on_disk = keys.Key.fromFile(str(key_file)).public().toString("openssh").decode()
    assert on_disk.split()[:2] == seen[0]


# -- options ----------------------------------------------------------------------


def test_admin_port_without_credentials_is_a_clear_error(tmp_path):
    """--admin-port alone is refused before anything starts, saying what to add."""
    with pytest.raises(usage.UsageError) as caught:
        options(tmp_path, "--admin-port", "tcp:2222")
    message = str(caught.value)
    assert "--admin-keys" in message and "--admin-passwd" in message
    assert "no default login" in message
    twistd = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
         "-n", "--pidfile=", "chat", "--data-dir", str(tmp_path / "data"),
         "--admin-port", "tcp:2222"],
        capture_output=True, timeout=TIMEOUT, cwd=str(ROOT),
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert twistd.returncode != 0
    assert b"--admin-port needs credentials" in twistd.stdout + twistd.stderr
    assert not (tmp_path / "data").exists()


def _authorized(tmp_path: Path) -> str:
    key = keys.Key.fromString(
        b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnXvVbdVZl2TH1lTGLrCFAHAl3U4B36DkAafylVwoSL")
    path = tmp_path / "authorized_keys"
    path.write_bytes(key.toString("openssh") + b" someone\n")
    path.chmod(0o644)
    return str(path)


@pytest.mark.parametrize("given, expected", [
    ("tcp:2222", "tcp:2222:interface=127.0.0.1"),
    ("2222", "tcp:2222:interface=127.0.0.1"),
    ("tcp6:2222", "tcp6:2222:interface=\\:\\:1"),
    ("tcp:2222:interface=127.0.0.1", "tcp:2222:interface=127.0.0.1"),
    ("tcp:2222:interface=localhost", "tcp:2222:interface=localhost"),
    ("unix:/tmp/admin.sock", "unix:/tmp/admin.sock"),
])
def test_admin_port_binds_to_loopback_by_default(tmp_path, given, expected):
    """Without an interface the admin port listens on loopback only."""
    parsed = options(tmp_path, "--admin-port", given, "--admin-keys", _authorized(tmp_path))
    assert parsed["admin-port"] == expected
    assert parsed["admin-remote"] is False


@pytest.mark.parametrize("given", [
    "tcp:2222:interface=0.0.0.0", "tcp6:2222:interface=\\:\\:", "tcp:2222:interface=10.1.2.3",
])
def test_remote_admin_port_needs_allow_remote(tmp_path, given):
    """A non-loopback interface is refused unless --admin-allow-remote is given."""
    keys_file = _authorized(tmp_path)
    with pytest.raises(usage.UsageError, match="--admin-allow-remote"):
        options(tmp_path, "--admin-port", given, "--admin-keys", keys_file)
    parsed = options(tmp_path, "--admin-port", given, "--admin-keys", keys_file,
                     "--admin-allow-remote")
    assert parsed["admin-port"] == given and parsed["admin-remote"] is True


@pytest.mark.parametrize("args, complaint", [
    (["--admin-keys", "KEYS"], "only make sense with --admin-port"),
    (["--admin-allow-remote"], "only make sense with --admin-port"),
    (["--admin-port", "ssl:2222", "--admin-keys", "KEYS"], "tcp:, tcp6: or unix:"),
    (["--admin-port", "tcp:2222", "--admin-keys", "MISSING"], "cannot read"),
    (["--admin-port", "tcp:2222", "--admin-keys", "EMPTY"], "no usable key"),
    (["--admin-port", "tcp:2222", "--admin-keys", "OPEN"], "writable by other users"),
    (["--admin-port", "tcp:2222", "--admin-passwd", "BAD"], "line 1"),
])
def test_bad_admin_options_are_explained(tmp_path, args, complaint):
    """Each misuse of the admin options is a usage error saying what is wrong."""
    files = {"KEYS": _authorized(tmp_path), "MISSING": str(tmp_path / "nope")}
    for name, content in (("EMPTY", "# nothing yet\n"), ("OPEN", Path(files["KEYS"]).read_text()),
                          ("BAD", "admin:my-plaintext-password\n")):
        path = tmp_path / name
        path.write_text(content)
        path.chmod(0o666 if name == "OPEN" else 0o600)
        files[name] = str(path)
    with pytest.raises(usage.UsageError, match=re.escape(complaint)) as caught:
        options(tmp_path, *[files.get(arg, arg) for arg in args])
    assert "my-plaintext-password" not in str(caught.value)


def test_admin_is_off_unless_asked_for(tmp_path):
    """Without --admin-port there is no admin service and no host key."""
    from twisted.internet import task

    top = makeService(options(tmp_path, "--no-database"), task.Clock())
    assert "admin" not in [service.name for service in top]
    assert not (tmp_path / "data").exists()


def test_authorized_keys_lines_with_options_are_not_trusted(tmp_path):
    """Keys with OpenSSH options (from=, command=...) are ignored, not granted more."""
    key = Path(_authorized(tmp_path)).read_text().split()[:2]
    path = tmp_path / "keys"
    path.write_text(f'from="10.0.0.1" {" ".join(key)} restricted\n'
                    "# a comment\n\nnot a key at all\n" + " ".join(key) + " plain\n")
    found = credentials.read_authorized_keys(str(path))
    assert [k.toString("openssh").decode() for k in found] == [" ".join(key)]
    db = credentials.AuthorizedKeysFile(str(path))
    assert list(db.getAuthorizedKeys(b"admin")) == found
    assert list(db.getAuthorizedKeys(b"root")) == []


@pytest_twisted.ensureDeferred
async def test_remote_admin_port_is_logged_as_a_warning(tmp_path, admin_log):
    """An admin port allowed to be remote says so in the log when it starts."""
    from twisted.internet import reactor

    factory = ssh.AdminSSHFactory(None, hostkey.load_or_create_host_key(str(tmp_path)))
    endpoint = endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    service = admin_service.AdminService(endpoint, factory, "tcp:2222:interface=0.0.0.0", remote=True)
    service.startService()
    await service.listening.addTimeout(TIMEOUT, reactor)
    await service.stopService()
    warnings = [m for e, m in zip(admin_log, messages(admin_log))
                if e["log_level"].name == "warn"]
    assert any("reachable from other hosts" in m for m in warnings), warnings


# -- the host key ---------------------------------------------------------------------


def test_host_key_file_is_created_private_and_reused(tmp_path):
    """The key is generated once, 0600 in a 0700 directory, and loaded after."""
    data = tmp_path / "state" / "chat"
    first = hostkey.load_or_create_host_key(str(data))
    path = data / hostkey.HOST_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert first.type() == "Ed25519" and not first.isPublic()
    assert hostkey.load_or_create_host_key(str(data)) == first
    path.chmod(0o644)
    assert hostkey.load_or_create_host_key(str(data)) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in data.iterdir() if p.name.startswith(".")]


def test_unusable_host_key_is_a_clear_error(tmp_path):
    """A corrupt host key file stops start-up with a message naming it."""
    (tmp_path / hostkey.HOST_KEY_FILE).write_text("garbage")
    with pytest.raises(hostkey.AdminSetupError, match=hostkey.HOST_KEY_FILE):
        hostkey.load_or_create_host_key(str(tmp_path))


def test_factories_do_not_share_key_dicts(tmp_path):
    """Each SSH factory has its own key dicts; ConchFactory's class dicts stay empty."""
    from twisted.conch.manhole_ssh import ConchFactory

    one = ssh.AdminSSHFactory(None, hostkey.load_or_create_host_key(str(tmp_path / "a")))
    two = ssh.AdminSSHFactory(None, hostkey.load_or_create_host_key(str(tmp_path / "b")))
    assert one.privateKeys is not two.privateKeys
    assert one.privateKeys != two.privateKeys
    assert ConchFactory.publicKeys == {} and ConchFactory.privateKeys == {}


# -- the shell and its helpers --------------------------------------------------------


def shell_output(function, *args, **kwargs) -> str:
    """What calling a helper prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert function(*args, **kwargs) is None
    return out.getvalue()


def test_helpers_show_and_change_live_state(factory, connect):
    """who, room, stats, announce, close_room and kick act on the live factory."""
    alice = connect("alice")
    bob = connect("bob")
    bob.send("/join games", "/topic cards tonight")
    alice.take()
    bob.take()
    ns = namespace.make_namespace(factory.chat, reactor=None)
    assert ns["users"] is factory.chat.users and ns["rooms"] is factory.chat.rooms

    who = shell_output(ns["who"])
    assert "2 users online" in who
    assert re.search(r"alice\s+#lobby\*", who) and re.search(r"bob\s+#lobby, #games\*", who)
    games = shell_output(ns["room"], "#games")
    assert "topic: cards tonight (set by bob)" in games and "members: bob" in games
    assert "no room called" in shell_output(ns["room"], "nowhere").lower()
    stats = shell_output(ns["stats"])
    for counter in ("uptime", "connections", "users", "rooms", "lines relayed", "bytes"):
        assert counter in stats

    assert shell_output(ns["announce"], "restart at noon") == "Announced to 2 users.\n"
    assert alice.take() == ["-- Announcement: restart at noon"]
    assert "Announced to 1 user." in shell_output(ns["announce"], "games only", room="games")
    assert bob.take()[-1].endswith("games only") and alice.take() == []
    assert "Closed #games." in shell_output(ns["close_room"], "games", "cleanup")
    assert "games" not in factory.chat.rooms

    assert "who() lists" in shell_output(ns["kick"], "nobody")
    assert shell_output(ns["kick"], "bob", "spam") == "Kicked bob.\n"
    assert bob.take()[-1] == "-- You have been kicked: spam" and bob.closed
    assert "bob" not in factory.chat.users


def test_every_helper_is_documented_and_listed(factory):
    """helpers() and help() list every helper with its docstring; help(obj) never pages."""
    ns = namespace.make_namespace(factory.chat, reactor=None)
    names = ["who", "room", "stats", "kick", "announce", "close_room", "helpers", "help"]
    listing = shell_output(ns["helpers"])
    for name in names:
        assert ns[name].__doc__, name
        assert f"  {name}(" in listing
    assert shell_output(ns["help"]) == listing
    assert "Disconnect the user" in shell_output(ns["help"], ns["kick"])
    assert "not available here" in shell_output(ns["help"], "modules")
    assert namespace.make_namespace(factory.chat, None) is not ns


class FakeChannel:
    """The SSH session channel, as far as the shell transport uses it."""

    conn = None


class FakeProcessProtocol:
    """Stands for Twisted's SSHSessionProcessProtocol: records what the shell does."""

    def __init__(self) -> None:
        self.session = FakeChannel()
        self.written = b""
        self.ended = []

    def makeConnection(self, transport) -> None:
        self.transport = transport

    def write(self, data: bytes) -> None:
        self.written += data

    def processEnded(self, reason) -> None:
        self.ended.append(reason.value.exitCode)


def open_session(factory):
    """An AdminSession with an open shell on a fake channel."""
    session = ssh.AdminSession(Componentized())
    session.namespace_factory = lambda: namespace.make_namespace(factory.chat, None)
    session.getPty(b"xterm", (24, 80, 0, 0), [])
    proto = FakeProcessProtocol()
    session.openShell(proto)
    return session, proto


def test_session_handles_window_changes_and_end_of_input(factory):
    """Window changes are accepted and end of input ends the shell with status 0."""
    session, proto = open_session(factory)
    assert "helpers()" in plain(proto.written)
    session.windowChanged((50, 132, 0, 0))
    assert session.shell.chained.terminalProtocol.width == 132
    session.eofReceived()
    assert proto.ended == [0]
    session.closed()
    assert session.shell is None
    session.windowChanged((10, 10, 0, 0))  # after the end: ignored, no error
    session.eofReceived()


def test_shell_evaluates_and_system_exit_ends_only_the_session(factory):
    """Python typed in the shell runs; SystemExit ends the session, not the server."""
    session, proto = open_session(factory)
    session.shell.chained.dataReceived(b"chat.server_name.upper()\r")
    assert "'TESTCHAT'" in plain(proto.written)
    session.shell.chained.dataReceived(b"raise SystemExit(3)\r")
    assert proto.ended == [0]


def test_namespace_is_fresh_for_each_session(factory):
    """A name bound in one session is not seen by the next."""
    first, proto = open_session(factory)
    first.shell.chained.dataReceived(b"leftover = 1\r")
    second, proto2 = open_session(factory)
    second.shell.chained.dataReceived(b"leftover\r")
    assert "NameError" in plain(proto2.written)


# -- passwords ----------------------------------------------------------------------------


def test_password_hashes_are_salted_and_verified():
    """Hashes are salted scrypt strings; only the right password verifies."""
    one, two = passwords.hash_password("s3cret"), passwords.hash_password("s3cret")
    assert one != two and one.startswith("$scrypt$") and "s3cret" not in one
    assert passwords.verify_password("s3cret", one)
    assert not passwords.verify_password("s3cret!", one)
    assert not passwords.verify_password("s3cret", "s3cret")
    assert not passwords.verify_password("x", "$scrypt$n=1073741824,r=8,p=1$AAAA$AAAA")


def test_password_command_adds_changes_and_removes(tmp_path, capsys):
    """The passwords command writes 0600 files, replaces entries and removes them."""
    path = str(tmp_path / "passwd")
    stdin = sys.stdin
    try:
        for password in ("first", "second"):
            sys.stdin = io.StringIO(password + "\n")
            assert passwords.main(["add", "--stdin", path, "admin"]) == 0
        sys.stdin = io.StringIO("other\n")
        assert passwords.main(["add", "--stdin", path, "ops"]) == 0
        sys.stdin = io.StringIO("\n")
        assert passwords.main(["add", "--stdin", path, "ops"]) == 1
    finally:
        sys.stdin = stdin
    entries = passwords.read_password_file(path)
    assert sorted(entries) == ["admin", "ops"]
    assert passwords.verify_password("second", entries["admin"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert passwords.main(["remove", path, "ops"]) == 0
    assert passwords.main(["remove", path, "ops"]) == 1
    assert list(passwords.read_password_file(path)) == ["admin"]
    assert "empty password refused" in capsys.readouterr().err
