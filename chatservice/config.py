"""
The settings file (C{twistd chat --config FILE}): the options of
C{twistd chat}, one C{NAME = VALUE} per line, read at start-up and again
at every C{SIGHUP}.

A name is an option's long name without its dashes (C{flood-rate = 2}).
Blank lines and lines starting with C{#} are skipped.  An option given on
the command line wins over the file.  Options that may be given several
times (C{--port}) and on/off flags (C{--no-database}) stay on the command
line, so that a reload never has to guess what a missing line means.
"""

import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Set

from twisted.python import reflect, usage

#: Largest settings file read, in bytes: it is a list of options, not data.
MAX_CONFIG_BYTES = 64 * 1024

#: A value's converter (the option's coerce function), or None for text.
Coerce = Optional[Callable[[str], Any]]


class ConfigError(ValueError):
    """The settings file cannot be read or does not make sense."""


def parse_config(text: str, path: str, settable: Mapping[str, Coerce],
                 refused: Mapping[str, str]) -> Dict[str, Any]:
    """
    Return the C{{option: value}} settings of the file C{path} holding
    C{text}, each value converted by its option's coerce function.

    @param settable: the options the file may set, with their converters.
    @param refused: options that must stay on the command line, with the
        reason to give.
    @raise ConfigError: naming the line at fault and what to write instead.
    """
    values: Dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}, line {number}"
        name, sep, value = line.partition("=")
        name, value = name.strip().lstrip("-").lower(), value.strip()
        if not sep or not name:
            raise ConfigError(f"{where}: expected NAME = VALUE (for example "
                              f"'flood-rate = 2'), not {line[:60]!r}")
        if name in refused:
            raise ConfigError(f"{where}: {name} cannot be set here: {refused[name]}")
        if name not in settable:
            close = difflib.get_close_matches(name, list(settable), n=1)
            guess = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{where}: there is no option {name!r}.{guess} "
                              "'twistd chat --help' lists them.")
        if name in values:
            raise ConfigError(f"{where}: {name} is set twice in the file")
        coerce = settable[name]
        try:
            values[name] = value if coerce is None else coerce(value)
        except Exception as e:  # the options' converters raise UsageError
            raise ConfigError(f"{where}: {name}: {e}") from None
    return values


def read_small_file(path: str, limit: int) -> bytes:
    """
    Return the bytes of the file at C{path}, an operator's file that is
    read whole (settings, a message of the day).  Raise L{ValueError}
    saying why, in words, if it cannot be read or is larger than C{limit}.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise ValueError(f"cannot read {path!r}: {e.strerror or e}") from None
    if len(data) > limit:
        raise ValueError(f"{path!r} is larger than {limit} bytes")
    return data


def read_config(path: str, settable: Mapping[str, Coerce],
                refused: Mapping[str, str]) -> Dict[str, Any]:
    """Read and parse the settings file at C{path} (see L{parse_config})."""
    try:
        data = read_small_file(path, MAX_CONFIG_BYTES)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 ({e.reason} at byte {e.start})") from None
    return parse_config(text, path, settable, refused)


@dataclass
class ConfigSource:
    """
    Where the settings came from at start-up, so that a reload can tell
    what changed: the file, what the command line fixed, the defaults.

    @ivar path: the settings file.
    @ivar settable: the options the file may set, with their converters.
    @ivar refused: the options it may not set, with the reason.
    @ivar defaults: each settable option's default, used when its line is
        taken out of the file.
    @ivar command_line: the options given on the command line, with their
        values; they win over the file.
    @ivar in_effect: each settable option's value in force now.
    """

    path: str
    settable: Mapping[str, Coerce]
    refused: Mapping[str, str]
    defaults: Mapping[str, Any]
    command_line: Mapping[str, Any] = field(default_factory=dict)
    in_effect: Dict[str, Any] = field(default_factory=dict)

    def read(self) -> Dict[str, Any]:
        """Read the file again (L{ConfigError} if it cannot be used)."""
        return read_config(self.path, self.settable, self.refused)

    def wanted(self, from_file: Mapping[str, Any]) -> Dict[str, Any]:
        """
        Return the value each settable option should have, given what the
        file says now: the command line's, else the file's, else the
        default.
        """
        return {name: self.command_line[name] if name in self.command_line
                else from_file.get(name, self.defaults[name])
                for name in self.settable}

    def overridden(self, from_file: Mapping[str, Any]) -> FrozenSet[str]:
        """The options the file sets to a value the command line overrides."""
        return frozenset(name for name, value in from_file.items()
                         if name in self.command_line and self.command_line[name] != value)


class ConfigFileOptions(usage.Options):
    """
    Gives a L{usage.Options} a C{--config FILE} option: call
    L{apply_config_file} first thing in C{postOptions}; the source of the
    settings is then C{self.config_source} (L{None} without C{--config}).
    """

    optParameters = [
        ["config", None, None,
         "A settings file: one 'NAME = VALUE' per line, NAME being the long "
         "name of an option above ('flood-rate = 2'); options on the command "
         "line win over it. SIGHUP re-reads it and puts changed limits in force."],
    ]

    config_source: Optional[ConfigSource] = None

    def parseOptions(self, options=None) -> None:
        """Parse the command line, noting which options it gives."""
        self.command_line: Set[str] = set()
        dispatch = getattr(self, "_dispatch", {})
        for name, handler in list(dispatch.items()):
            dispatch[name] = _Noted(name, handler, self.command_line)
        super().parseOptions(options)

    def _parameters(self) -> List[list]:
        found: List[list] = []
        reflect.accumulateClassList(type(self), "optParameters", found)
        return found

    def apply_config_file(self) -> None:
        """
        Read C{--config} and take its values for the options the command
        line did not give; raise L{usage.UsageError} if it is unusable.
        """
        if not self["config"]:
            return
        path = os.path.abspath(os.path.expanduser(self["config"]))
        parameters = [p for p in self._parameters() if p[0] != "config"]
        settable = {p[0]: (p[4] if len(p) > 4 else None) for p in parameters}
        flags: List[list] = []
        reflect.accumulateClassList(type(self), "optFlags", flags)
        refused = {f[0]: f"it is a flag: give --{f[0]} on the command line" for f in flags}
        for method in dir(type(self)):
            if method.startswith("opt_"):
                name = method[4:].replace("_", "-")
                refused.setdefault(name, f"give --{name} on the command line")
        refused["config"] = "a settings file cannot name another"
        try:
            from_file = read_config(path, settable, refused)
        except ConfigError as e:
            raise usage.UsageError(f"--config: {e}") from None
        given = self.command_line
        command_line = {name: self[name] for name in settable if name in given}
        for name, value in from_file.items():
            if name not in given:
                self[name] = value
        self.config_source = ConfigSource(
            path=path, settable=settable, refused=refused,
            defaults={p[0]: p[2] for p in parameters},
            command_line=command_line,
            in_effect={name: self[name] for name in settable})


class _Noted:
    """An option handler that notes its option was given, then runs."""

    def __init__(self, name: str, handler: Any, noted: Set[str]) -> None:
        self.name, self.handler, self.noted = name, handler, noted

    def __call__(self, name: str, value: Any) -> None:
        self.noted.add(self.name)
        if isinstance(self.handler, usage.CoerceParameter):
            self.handler.dispatch(name, value)
        else:
            self.handler(name, value)
