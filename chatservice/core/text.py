"""
Text rules shared by every front end: name and room-name validation, the
case- and width-insensitive keys that make names unique, and the sanitising
that keeps one user's text from garbling another user's terminal.
"""

import re
import unicodedata
from typing import List, Optional

#: Longest user name, in characters (after normalisation).
MAX_NAME_LENGTH = 24
#: Longest room name, in characters, not counting a leading ``#``.
MAX_ROOM_NAME_LENGTH = 32
#: Longest topic, in characters.
MAX_TOPIC_LENGTH = 300

#: Names nobody may take: they would let a user pass as the server or staff.
RESERVED_NAMES = frozenset(
    {
        "server",
        "admin",
        "administrator",
        "root",
        "system",
        "operator",
        "sysop",
        "moderator",
        "chatservice",
        "nobody",
        "anonymous",
        "everyone",
        "all",
        "here",
    }
)

# An ANSI/VT escape sequence: CSI (ESC [ ... final byte), OSC (ESC ] ... BEL
# or ESC \), other string commands (DCS, SOS, PM, APC up to ST), or ESC plus
# one more character.  C1 forms (U+009B CSI, U+009D OSC) are handled too.
_ESCAPE_SEQUENCE = re.compile(
    r"""
      (?:\x1b\[|\x9b) [\x20-\x3f]* [\x40-\x7e]?         # CSI
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) .*? (?:\x07|\x1b\\|\x9c|$)  # OSC/DCS/...
    | \x1b [\x20-\x2f]* [\x30-\x7e]?                     # other escapes
    """,
    re.VERBOSE | re.DOTALL,
)

# Characters that are never shown: C0/C1 controls, format characters (which
# include bidirectional overrides and zero-width characters), line and
# paragraph separators, and private-use/unassigned code points that
# terminals may render unpredictably.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


#: Letters that display as nothing at all (Hangul fillers, Khmer inherent
#: vowels): "alice" plus one of these would look exactly like "alice".
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u17b4\u17b5")


def _is_name_character(char: str) -> bool:
    category = unicodedata.category(char)
    return ((category[0] == "L" or category == "Nd" or char in "_-")
            and char not in _BLANK_LETTERS)


def sanitize(text: str) -> str:
    """
    Return C{text} made safe to show on someone else's terminal.

    Escape sequences are removed whole, tabs become spaces, and every other
    control, format (bidirectional overrides, zero-width characters) or
    unassigned character is dropped.  Leading and trailing spaces go too.
    Printable ASCII, the overwhelmingly common case, passes untouched.
    """
    if text.isascii() and text.isprintable():
        return text.strip()
    text = _ESCAPE_SEQUENCE.sub("", text).replace("\t", " ")
    return "".join(
        char
        for char in text
        if unicodedata.category(char) not in _INVISIBLE_CATEGORIES
    ).strip()


def normalize(text: str) -> str:
    """
    Return the NFKC form of C{text}: compatibility forms (fullwidth letters,
    ligatures, superscripts) become their plain equivalents.
    """
    return unicodedata.normalize("NFKC", text)


def name_key(name: str) -> str:
    """
    Return the key under which a user or room name is unique: NFKC
    normalised and case folded, so C{"Alice"}, C{"alice"} and the fullwidth
    C{"Ａｌｉｃｅ"} are the same name.
    """
    return unicodedata.normalize("NFKC", name).casefold()


#: Scripts with letters that look like each other's (Latin "a", Cyrillic
#: "а", Greek "α"): a name may use letters of only one of them, so that
#: "аlice" with a Cyrillic "а" cannot pass for "alice".
LOOKALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE")


def _lookalike_scripts(name: str) -> List[str]:
    """The L{LOOKALIKE_SCRIPTS} whose letters C{name} uses, in that order."""
    if name.isascii():
        return ["LATIN"] if any(char.isalpha() for char in name) else []
    used = {unicodedata.name(char, "").split(" ", 1)[0]
            for char in name if char.isalpha()}
    return [script for script in LOOKALIKE_SCRIPTS if script in used]


def _check_identifier(kind: str, name: str, max_length: int) -> Optional[str]:
    if not name:
        return f"A {kind} cannot be empty."
    if len(name) > max_length:
        return (
            f"That {kind} is {len(name)} characters long; "
            f"the limit is {max_length}."
        )
    bad = sorted({char for char in name if not _is_name_character(char)})
    if bad:
        shown = " ".join(repr(char) if char.isprintable() else
                         f"U+{ord(char):04X}" for char in bad[:5])
        return (
            f"A {kind} may only contain letters, digits, '_' and '-' "
            f"(not {shown})."
        )
    scripts = _lookalike_scripts(name)
    if len(scripts) > 1:
        shown = " and ".join(script.capitalize() for script in scripts)
        return (
            f"A {kind} may not mix {shown} letters, which look alike; "
            f"use letters of one alphabet."
        )
    return None


def check_name(name: str, max_length: int = MAX_NAME_LENGTH) -> Optional[str]:
    """
    Return why C{name} (already normalised) is not a valid user name, or
    L{None} if it is.
    """
    problem = _check_identifier("name", name, max_length)
    if problem is None and name_key(name) in RESERVED_NAMES:
        problem = f"The name {name!r} is reserved."
    return problem


def check_room_name(
    name: str, max_length: int = MAX_ROOM_NAME_LENGTH
) -> Optional[str]:
    """
    Return why C{name} (already normalised, without its C{#}) is not a valid
    room name, or L{None} if it is.
    """
    return _check_identifier("room name", name, max_length)


def clean_room_name(raw: str) -> str:
    """
    Return a room name as the user meant it: sanitised, normalised, and
    without the leading C{#} that people often type.
    """
    return normalize(sanitize(raw)).lstrip("#")
