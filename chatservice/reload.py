"""
What C{SIGHUP} re-reads without a restart: the message of the day, the
limits in the settings file (C{--config}), and the admin credential files.

Every reload logs what changed and what would need a restart.  No
connection is dropped, and users hear nothing unless the message of the
day changed (they are then told to type C{/motd}).
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from twisted.logger import Logger

from .config import ConfigError, ConfigSource, read_small_file
from .core.chat import Chat
from .passwords import PasswordFileError, read_password_file

log = Logger()

#: Largest message of the day read from its file, in bytes.
MAX_MOTD_BYTES = 64 * 1024

#: What users are told when a reload changed the message of the day.
MOTD_CHANGED = "The message of the day has changed: type /motd to read it."


def read_motd_file(path: str) -> str:
    """
    Return the message of the day in the UTF-8 file C{path} (invalid bytes
    become U+FFFD).  Raise L{ValueError}, with the reason in words, if it
    cannot be read or is larger than L{MAX_MOTD_BYTES}.
    """
    return read_small_file(path, MAX_MOTD_BYTES).decode("utf-8", "replace")


def apply_limits(chat: Chat, changes: Mapping[str, Any]) -> None:
    """
    Put new values of L{chatservice.core.limits.Limits} fields in force
    in a running chat.  Most limits are read where they are used; the
    password-check queue keeps its own copy and is resized.  The line
    length and flood control of a connection are fixed when it opens, so
    they hold for connections made after the change.
    """
    limits = chat.limits
    for name, value in changes.items():
        setattr(limits, name, value)
    accounts = chat.accounts
    if accounts is not None:
        accounts.checks.resize(limits.max_password_checks, limits.max_checks_per_address,
                               limits.max_checks_waiting)


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(
        value, str) or value is None else str(value)


class Reloader:
    """
    Re-reads what can change without a restart, when C{SIGHUP} comes.

    @ivar motd_path: the file the message of the day comes from, or L{None}
        (it was given as text).
    @ivar config: where the settings came from, or L{None} (no
        C{--config}).
    @ivar live: the settings a reload puts in force, mapped to their
        L{Limits} field; a changed value of any other setting is logged as
        needing a restart.
    @ivar admin_files: C{(option, path)} of the admin credential files.
    """

    def __init__(self, chat: Chat, motd_path: Optional[str] = None,
                 config: Optional[ConfigSource] = None,
                 live: Optional[Mapping[str, str]] = None,
                 admin_files: Sequence[Tuple[str, str]] = ()) -> None:
        self.chat = chat
        self.motd_path = motd_path
        self.config = config
        self.live: Mapping[str, str] = live or {}
        self.admin_files = list(admin_files)
        self._admin_seen: Dict[str, object] = {}
        for option, path in self.admin_files:
            self._admin_seen[option] = self._read_admin_file(option, path)

    def reload(self) -> None:
        """Re-read everything, put what can change in force, log it all."""
        if self.chat.shutting_down:
            log.info("SIGHUP: nothing reloaded, the server is shutting down")
            return
        said = [self._reload_motd(), self._reload_config()]
        said += [self._check_admin_file(option, path) for option, path in self.admin_files]
        done = [line for line in said if line]
        log.info("SIGHUP: {what}", what="; ".join(done) if done else
                 "nothing to reload (no --motd file, no --config, no admin "
                 "credential files); other options take effect at a restart")

    # -- the message of the day -------------------------------------------

    def _reload_motd(self) -> str:
        if self.motd_path is None:
            return ""
        try:
            motd = read_motd_file(self.motd_path)
        except ValueError as e:
            log.error("SIGHUP: kept the old message of the day: {reason}", reason=str(e))
            return "message of the day kept (unreadable)"
        if motd == self.chat.motd:
            return f"message of the day unchanged ({self.motd_path})"
        self.chat.motd = motd
        self.chat.announce(MOTD_CHANGED)
        return f"message of the day changed ({self.motd_path})"

    # -- the settings file ------------------------------------------------

    def _reload_config(self) -> str:
        config = self.config
        if config is None:
            return ""
        try:
            from_file = config.read()
        except ConfigError as e:
            log.error("SIGHUP: kept every setting as it was: {reason}", reason=str(e))
            return f"settings kept ({config.path} unusable)"
        for name in sorted(config.overridden(from_file)):
            log.info("SIGHUP: {name} = {file} in {path} is ignored: the command "
                     "line's --{name} {value} wins", name=name, path=config.path,
                     file=_shown(from_file[name]), value=_shown(config.command_line[name]))
        changed: List[str] = []
        restart: List[str] = []
        updates: Dict[str, Any] = {}
        for name, value in config.wanted(from_file).items():
            now = config.in_effect.get(name)
            if value == now:
                continue
            if name in self.live:
                updates[self.live[name]] = value
                config.in_effect[name] = value
                changed.append(f"{name} {_shown(now)} -> {_shown(value)}")
            else:
                restart.append(f"{name} {_shown(now)} -> {_shown(value)}")
        if updates:
            apply_limits(self.chat, updates)
        if restart:
            log.warn("SIGHUP: {path} changes settings that take effect only at a "
                     "restart: {changes}", path=config.path, changes=", ".join(restart))
        if changed:
            return f"limits changed from {config.path}: {', '.join(changed)}"
        return f"no limit changed in {config.path}"

    # -- the admin credential files ------------------------------------------

    @staticmethod
    def _read_admin_file(option: str, path: str) -> object:
        """What the file holds now (for a comparison), or an error text."""
        if option == "admin-keys":
            from .admin.credentials import read_authorized_keys

            try:
                return sorted(key.fingerprint() for key in read_authorized_keys(path))
            except OSError as e:
                return f"cannot read {path}: {e.strerror}"
        try:
            return sorted(read_password_file(path).items())
        except PasswordFileError as e:
            return str(e)

    def _check_admin_file(self, option: str, path: str) -> str:
        # The files are read at every admin login anyway; reading them here
        # shows a broken edit in the log now, not at the next login.
        seen = self._read_admin_file(option, path)
        before, self._admin_seen[option] = self._admin_seen.get(option), seen
        if isinstance(seen, str):
            log.error("SIGHUP: --{option}: {problem}; nobody can log in with it "
                      "until it is mended", option=option, problem=seen)
            return f"--{option} unusable"
        what = "key" if option == "admin-keys" else "user"
        change = "unchanged" if seen == before else "changed"
        count = len(seen) if isinstance(seen, list) else 0
        return f"--{option} {change} ({count} {what}{'' if count == 1 else 's'})"
