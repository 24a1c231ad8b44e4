"""
IRCv3 capability negotiation (C{CAP LS / LIST / REQ / END}) for one
connection: what the server offers, what the client enabled, and whether
registration waits for C{CAP END}.
"""

from typing import List, Optional, Set, Tuple

#: The capabilities offered, in the order C{CAP LS} lists them.
SUPPORTED = ("message-tags", "server-time", "echo-message", "multi-prefix",
             "cap-notify", "batch", "labeled-response", "away-notify", "account-tag",
             "extended-join", "sasl", "draft/chathistory")
#: The values C{CAP LS 302} gives some capabilities (C{CAP LS} 301 gives none).
VALUES = {"sasl": "PLAIN"}
#: Capabilities that change how room events are encoded (the client's
#: renderer), in the order of L{RENDERING_ORDER}: they can only be changed
#: before registration, while the client is in no room.
RENDERING_ORDER = ("server-time", "message-tags", "account-tag", "extended-join")
RENDERING = frozenset(RENDERING_ORDER)
#: The CAP LS version from which C{cap-notify} is implied.
CAP_NOTIFY_VERSION = 302


class CapNegotiation:
    """
    One client's capabilities.

    @ivar enabled: the capabilities the client enabled.
    @ivar negotiating: true from the first C{CAP LS} or C{CAP REQ} before
        registration until C{CAP END}: registration waits meanwhile.
    @ivar version: the version given with C{CAP LS} (301 if none).
    """

    def __init__(self) -> None:
        self.enabled: Set[str] = set()
        self.negotiating = False
        self.version = 301

    def __contains__(self, name: str) -> bool:
        return name in self.enabled

    def ls(self, version: Optional[str]) -> str:
        """Answer C{CAP LS [version]}: the capabilities offered."""
        if version is not None and version.isdigit():
            self.version = max(self.version, int(version))
            if self.version >= CAP_NOTIFY_VERSION:
                self.enabled.add("cap-notify")
        if self.version >= CAP_NOTIFY_VERSION:
            return " ".join(f"{name}={VALUES[name]}" if name in VALUES else name
                            for name in SUPPORTED)
        return " ".join(SUPPORTED)

    def rendering(self) -> tuple:
        """Which of L{RENDERING_ORDER} are enabled, as a tuple of booleans."""
        return tuple(name in self.enabled for name in RENDERING_ORDER)

    def listed(self) -> str:
        """Answer C{CAP LIST}: the capabilities enabled."""
        return " ".join(name for name in SUPPORTED if name in self.enabled)

    def request(self, raw: str, registered: bool) -> Tuple[bool, List[str]]:
        """
        Apply C{CAP REQ :raw} all or nothing; return whether it was
        acknowledged and the names as requested.  A capability that is not
        offered, or (after registration) one of L{RENDERING}, makes the
        whole request a NAK.
        """
        asked = raw.split()
        changes = []
        for item in asked:
            remove = item.startswith("-")
            name = item[1:] if remove else item
            if name not in SUPPORTED or (registered and name in RENDERING):
                return False, asked
            changes.append((name, remove))
        if not asked:
            return False, asked
        for name, remove in changes:
            if remove:
                self.enabled.discard(name)
            else:
                self.enabled.add(name)
        return True, asked
