"""
The text rules of L{chatservice.core.text}: sanitising relayed text, the keys that
make names unique, and the validation of user and room names.
"""

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatservice.core.text import (
    MAX_NAME_LENGTH,
    MAX_ROOM_NAME_LENGTH,
    RESERVED_NAMES,
    check_name,
    check_room_name,
    clean_room_name,
    name_key,
    normalize,
    sanitize,
)

FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}

# Text that stresses the sanitiser: controls, escapes, bidi and format
# characters mixed with ordinary text.
hostile_text = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(
            ["\x1b", "[", "]", "\x07", "\x9b", "\x9c", "\x9d", "\\", ";", "0", "m",
             "\u202e", "\u2066", "\u200b", "\ufeff", "\u00ad", "\u2028", "\t", " "]
        ),
    ),
    max_size=60,
)


# -- sanitize -----------------------------------------------------------------


def test_sanitize_keeps_printable_ascii_and_strips_ends():
    """Plain ASCII passes unchanged except for surrounding spaces."""
    assert sanitize("  hello, world! <3  ") == "hello, world! <3"


def test_sanitize_keeps_non_ascii_letters_and_emoji():
    """Accented letters, CJK and emoji are ordinary text, not garbage."""
    assert sanitize("héllo wörld 日本 😀") == "héllo wörld 日本 😀"


def test_sanitize_turns_tabs_into_spaces():
    """Inner tabs become spaces and outer ones are stripped."""
    assert sanitize("\ttab\there\t") == "tab here"


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("\x1b[31mred\x1b[0m", "red"),  # CSI colour
        ("a\x1b[1mb", "ab"),  # bold in the middle
        ("\x1b[2J\x1b[Hx", "x"),  # clear screen, cursor home
        ("\x1b[10;20Hy", "y"),  # cursor move with parameters
        ("\x1b[5Aup", "up"),  # cursor up
        ("\x1b]0;pwned\x07after", "after"),  # OSC title, BEL-terminated
        ("\x1b]0;pwned\x1b\\after", "after"),  # OSC title, ST-terminated
        ("\x9b31mc1", "c1"),  # C1 CSI
        ("\x9d0;x\x9cz", "z"),  # C1 OSC ... C1 ST
        ("\x1bPq#0\x1b\\dcs", "dcs"),  # DCS string
        ("\x1bcreset", "reset"),  # RIS (full reset)
        ("\x1b(Bcharset", "charset"),  # designate character set
        ("\x1b", ""),
        ("\x1b[", ""),
    ],
)
def test_sanitize_removes_escape_sequences_whole(raw, clean):
    """ANSI/VT escape sequences are removed with their parameters."""
    assert sanitize(raw) == clean


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("a\u202eb", "ab"),  # RIGHT-TO-LEFT OVERRIDE
        ("a\u2066b\u2069", "ab"),  # isolates
        ("a\u200eb\u200f", "ab"),  # LRM/RLM
        ("zero\u200bwidth", "zerowidth"),  # ZERO WIDTH SPACE
        ("z\u200cw\u200dj", "zwj"),  # ZWNJ/ZWJ
        ("word\u2060joiner", "wordjoiner"),  # WORD JOINER
        ("\ufeffbom", "bom"),  # BOM / ZWNBSP
        ("soft\u00adhy", "softhy"),  # SOFT HYPHEN
        ("l\u2028s\u2029p", "lsp"),  # line/paragraph separators
        ("nul\x00bel\x07del\x7f", "nulbeldel"),  # C0 and DEL
        ("bs\x08cr\rlf\nff\x0c", "bscrlfff"),
        ("c1\x85x", "c1x"),  # NEL
        ("pua\ue000", "pua"),  # private use
        ("un\u0378x", "unx"),  # unassigned
        ("sur\ud800x", "surx"),  # lone surrogate
        ("\U000e0041tag", "tag"),  # tag character
    ],
)
def test_sanitize_removes_invisible_and_control_characters(raw, clean):
    """Controls, format characters (bidi, zero-width), separators and unassigned code points go."""
    assert sanitize(raw) == clean


def test_sanitize_unterminated_osc_swallows_rest():
    """An OSC string with no terminator is removed to the end, never shown raw."""
    assert sanitize("hi \x1b]0;never ends") == "hi"


@settings(max_examples=200, deadline=None)
@given(hostile_text)
def test_sanitize_output_has_no_invisible_categories(text):
    """Whatever the input, sanitize() returns no Cc/Cf/Zl/Zp character and no ESC."""
    clean = sanitize(text)
    assert "\x1b" not in clean
    for char in clean:
        assert unicodedata.category(char) not in FORBIDDEN_CATEGORIES, repr(char)
    assert clean == clean.strip()


@settings(max_examples=200, deadline=None)
@given(hostile_text)
def test_sanitize_is_idempotent(text):
    """Sanitising twice gives the same text as sanitising once."""
    once = sanitize(text)
    assert sanitize(once) == once


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_sanitize_of_printable_ascii_is_strip(text):
    """Printable ASCII is only stripped, never altered inside."""
    assert sanitize(text) == text.strip()


# -- normalize / name_key -------------------------------------------------------


def test_normalize_is_nfkc():
    """Compatibility forms become their plain equivalents (fullwidth, ligature, superscript)."""
    assert normalize("ＡＢ") == "AB"
    assert normalize("\ufb01") == "fi"
    assert normalize("x²") == "x2"
    assert normalize("e\u0301") == "é"


@pytest.mark.parametrize("other", ["alice", "ALICE", "Alice", "ａｌｉｃｅ", "ＡＬＩＣＥ"])
def test_name_key_ignores_case_and_width(other):
    """Names differing only by case or Unicode width share one key."""
    assert name_key(other) == name_key("alice") == "alice"


def test_name_key_casefolds_not_just_lowercases():
    """Case folding maps sharp s to ss, so Straße and STRASSE are the same name."""
    assert name_key("Straße") == name_key("STRASSE") == "strasse"


def test_name_key_distinguishes_different_names():
    """Different names keep different keys."""
    assert name_key("alice") != name_key("alicia")
    assert name_key("bob1") != name_key("bob2")


# -- check_name -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["alice", "Bob_2", "x-y", "_", "é", "日本語", "Ωμέγα", "алиса", "太郎たろう",
             "José-2", "a" * MAX_NAME_LENGTH]
)
def test_check_name_accepts_valid_names(name):
    """Letters (any script), digits, '_' and '-' up to the length limit are fine."""
    assert check_name(name) is None


def test_check_name_empty():
    """An empty name is refused with a reason."""
    assert check_name("") == "A name cannot be empty."


def test_check_name_too_long():
    """A name over the limit says how long it is and what the limit is."""
    assert check_name("a" * 25) == "That name is 25 characters long; the limit is 24."


def test_check_name_custom_limit():
    """The limit is a parameter (the --max-name-length option)."""
    assert check_name("a" * 25, 30) is None
    assert check_name("abcd", 3) == "That name is 4 characters long; the limit is 3."


def test_check_name_bad_character():
    """A forbidden character is named in the refusal."""
    assert check_name("bad name") == (
        "A name may only contain letters, digits, '_' and '-' (not ' ')."
    )


def test_check_name_lists_at_most_five_bad_characters_sorted():
    """Several bad characters are listed sorted, five at most."""
    assert check_name("a!b@c#d$e%f^g&") == (
        "A name may only contain letters, digits, '_' and '-' "
        "(not '!' '#' '$' '%' '&')."
    )


def test_check_name_shows_unprintable_character_as_code_point():
    """A bad character that would not print is shown as U+XXXX."""
    assert check_name("a\u1680b") == (
        "A name may only contain letters, digits, '_' and '-' (not U+1680)."
    )


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_check_name_reserved(name):
    """Every reserved name is refused, whatever its case."""
    assert check_name(name) == f"The name {name!r} is reserved."
    upper = name.upper()
    assert check_name(upper) == f"The name {upper!r} is reserved."


def test_check_name_reserved_set_covers_staff_names():
    """The names that pass for the server or staff are in the reserved set."""
    assert {"server", "admin", "root", "operator", "moderator"} <= RESERVED_NAMES


def test_check_name_reserved_only_exact():
    """A name merely containing a reserved word is allowed."""
    assert check_name("admin2") is None
    assert check_name("serverfan") is None


@settings(max_examples=200, deadline=None)
@given(hostile_text)
def test_accepted_names_contain_only_name_characters(raw):
    """Any name that passes sanitise+normalise+check is letters, digits, '_' and '-' only."""
    name = normalize(sanitize(raw))
    if check_name(name) is None:
        assert 1 <= len(name) <= MAX_NAME_LENGTH
        assert name_key(name) not in RESERVED_NAMES
        for char in name:
            category = unicodedata.category(char)
            assert category[0] == "L" or category == "Nd" or char in "_-", repr(char)


@pytest.mark.parametrize("filler", ["\u3164", "\uffa0", "\u115f", "\u1160"])
def test_check_name_refuses_blank_hangul_fillers(filler):
    """A name made of a character that renders as blank is refused."""
    assert check_name(normalize(sanitize(filler))) is not None


@pytest.mark.parametrize("name, scripts", [
    ("\u0430lice", "Latin and Cyrillic"),      # Cyrillic a
    ("b\u03bfb", "Latin and Greek"),           # Greek omicron
    ("\u0430\u03b1", "Cyrillic and Greek"),
    ("Ωmega", "Latin and Greek"),
])
def test_check_name_refuses_lookalike_scripts_mixed(name, scripts):
    """A name mixing Latin, Cyrillic or Greek letters (which look alike) is refused, saying what to do."""
    assert check_name(name) == (
        f"A name may not mix {scripts} letters, which look alike; use letters of one alphabet.")
    assert check_room_name(name) is not None


def test_mixed_script_name_cannot_pose_as_a_user(connect):
    """'аlice' with a Cyrillic 'а' is refused while alice is online."""
    connect("alice")
    mallory = connect()
    mallory.take()
    mallory.send("\u0430lice")
    assert mallory.protocol.state == "naming"
    assert "Latin and Cyrillic" in mallory.take()[0]


# -- rooms ------------------------------------------------------------------------


def test_check_room_name_rules():
    """Room names follow the name rules with their own wording and limit."""
    assert check_room_name("games") is None
    assert check_room_name("r" * MAX_ROOM_NAME_LENGTH) is None
    assert check_room_name("") == "A room name cannot be empty."
    assert check_room_name("r" * 33) == (
        "That room name is 33 characters long; the limit is 32."
    )
    assert check_room_name("a b") == (
        "A room name may only contain letters, digits, '_' and '-' (not ' ')."
    )
    assert check_room_name("r" * 10, 5) == (
        "That room name is 10 characters long; the limit is 5."
    )


def test_check_room_name_allows_reserved_user_names():
    """Reserved user names are fine as room names (#admin is just a room)."""
    assert check_room_name("admin") is None


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("games", "games"),
        ("#games", "games"),
        ("  #games ", "games"),
        ("##x", "x"),
        ("＃ｇａｍｅｓ", "games"),  # fullwidth, normalised
        ("\x1b[31m#red", "red"),  # escape removed before the '#'
        ("#Games", "Games"),  # case is kept for display
        ("#", ""),
        ("", ""),
    ],
)
def test_clean_room_name(raw, clean):
    """A room name loses escapes, width and the leading '#' but keeps its case."""
    assert clean_room_name(raw) == clean
