"""
Moderation (L{chatservice.core.moderation}) through the line protocol: room
operators and voices, kicks, bans (masks, case folding and Unicode),
invites and a room's modes, for operators and for everyone else.
"""

import pytest
from twisted.logger import globalLogPublisher

from chatservice.core import errors
from chatservice.core.moderation import ModeChange, ban_key, mask_matches, parse_modes
from chatservice.frontends.line.commands import ChatCommands


@pytest.fixture
def games(connect):
    """alice created #games (so she is its operator); bob and carol joined it."""
    alice, bob, carol = connect("alice"), connect("bob"), connect("carol")
    for client in (alice, bob, carol):
        client.send("/join games")
    for client in (alice, bob, carol):
        client.take()
    return alice, bob, carol


def room(factory, name="games"):
    return factory.chat.rooms[name]


# -- the rules on their own ------------------------------------------------------------


@pytest.mark.parametrize("mask, name, matches", [
    ("Alice", "alice", True),
    ("ALICE", "alice", True),
    ("ａｌｉｃｅ", "alice", True),  # fullwidth: NFKC folds it
    ("alice", "alicia", False),
    ("spam*", "spammer", True),
    ("*bot", "chatbot", True),
    ("*bot", "bottle", False),
    ("a*e", "alice", True),
    ("a*e", "alicia", False),
    ("*", "anyone", True),
    ("Alice!*@*", "alice", True),
    ("*!~bob@chatservice", "bob", True),
    ("Straße", "strasse", True),  # case folding: ß is ss
    ("a.b", "axb", False),  # no regular expressions
])
def test_ban_masks_match_name_keys(mask, name, matches):
    """A mask is matched against the name key: case-folded, NFKC, IRC's nick part, * any letters."""
    assert mask_matches(ban_key(mask), name) is matches


def test_parse_modes():
    """Mode words become changes, each letter that takes an argument taking the next one."""
    assert parse_modes(["+ov-m", "bob", "carol"]) == [
        ModeChange(True, "o", "bob"), ModeChange(True, "v", "carol"), ModeChange(False, "m")]
    assert parse_modes(["+kl", "sesame", "5"]) == [
        ModeChange(True, "k", "sesame"), ModeChange(True, "l", "5")]
    assert parse_modes(["-kl"]) == [ModeChange(False, "k"), ModeChange(False, "l")]
    with pytest.raises(errors.InvalidMode):
        parse_modes(["+o"])


def test_creator_is_operator_and_default_room_has_none(factory, games):
    """Whoever creates a room is its operator; nobody is one of the default room."""
    assert room(factory).moderation.operators == {"alice"}
    assert room(factory, "lobby").moderation.operators == set()


def test_status_follows_a_rename_and_goes_on_leaving(factory, games):
    """A rename keeps the status; leaving the room drops it (a newcomer may take the name)."""
    alice, bob, carol = games
    alice.send("/op bob", "/voice carol")
    bob.send("/nick robert")
    carol.send("/nick CAROLINE")
    state = room(factory).moderation
    assert state.operators == {"alice", "robert"} and state.voiced == {"caroline"}
    bob.send("/leave games")
    assert state.operators == {"alice"}


def test_moderators_actions_are_logged(factory, games):
    """Every moderator's action is logged: who, what, to whom, where."""
    alice, bob, carol = games
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        alice.send("/op bob", "/kick carol spam", "/ban eve*", "/invite carol")
    finally:
        globalLogPublisher.removeObserver(logged.append)
    texts = [e["log_format"].format(**e) for e in logged if "moderation" in e["log_format"]]
    assert texts == [
        "moderation: alice set +o bob in #games",
        "moderation: alice kicked carol from #games (spam)",
        "moderation: alice set +b eve* in #games",
        "moderation: alice invited carol to #games",
    ]


# -- /op, /deop, /voice, /devoice ----------------------------------------------------------


def test_op_and_deop(factory, games):
    """An operator makes and unmakes operators; the room sees it; /look shows @."""
    alice, bob, carol = games
    alice.send("/op bob")
    expected = "-- alice made bob an operator in #games"
    assert alice.take() == [expected] and bob.take() == [expected] and carol.take() == [expected]
    carol.send("/look")
    assert carol.take()[-1] == "-- 3 users here: @alice, @bob, carol"
    bob.send("/deop alice")
    assert carol.take() == ["-- bob took operator status from alice in #games"]
    alice.take()
    alice.send("/op carol")
    assert alice.take() == [
        "!! You are not an operator of #games. Type /look to see the operators (marked @)."]


def test_voice_and_devoice(factory, games):
    """Voiced members show as +name."""
    alice, bob, carol = games
    alice.send("/voice bob")
    assert carol.take() == ["-- alice gave bob a voice in #games"]
    carol.send("/look")
    assert carol.take()[-1] == "-- 3 users here: @alice, +bob, carol"
    alice.send("/devoice BOB")
    assert carol.take() == ["-- alice took the voice of bob in #games"]
    alice.take()
    alice.send("/devoice bob")
    assert alice.take() == ["-- bob has no voice in #games."]


def test_status_commands_refused(factory, games):
    """Non-operators, absent or unknown targets and missing names are each explained."""
    alice, bob, carol = games
    bob.send("/voice carol", "/deop alice", "/devoice carol")
    assert bob.take() == [
        "!! You are not an operator of #games. Type /look to see the operators (marked @)."] * 3
    alice.send("/op nobody", "/op", "/op alice")
    assert alice.take() == [
        "!! No one called 'nobody' is online. Type /who to see who is online.",
        "!! Usage: /op NAME. Type /help op for more.",
        "-- alice is already an operator of #games.",
    ]


def test_op_someone_not_in_the_room(factory, connect, games):
    alice, bob, carol = games
    connect("dave")
    alice.take()
    alice.send("/op dave")
    assert alice.take() == ["!! dave is not in #games. Type /look to see who is here."]


# -- /kick ---------------------------------------------------------------------------------


def test_kick(factory, games):
    """The kicked user sees who and why and stays connected, out of the room; the room sees it."""
    alice, bob, carol = games
    alice.send("/kick bob too loud")
    assert alice.take() == ["<- bob was kicked out of #games by alice (too loud)"]
    assert carol.take() == ["<- bob was kicked out of #games by alice (too loud)"]
    assert bob.take() == [
        "<- bob was kicked out of #games by alice (too loud)",
        "-- You are now talking in #lobby. Type /join #games to go back, if its operators "
        "let you.",
    ]
    assert not bob.closed and bob.user not in room(factory)
    bob.send("/join games")  # a kick is not a ban
    assert bob.user in room(factory)


def test_kick_refused(factory, games):
    alice, bob, carol = games
    bob.send("/kick alice")
    assert bob.take() == [
        "!! You are not an operator of #games. Type /look to see the operators (marked @)."]
    alice.send("/kick", "/kick nobody")
    assert alice.take() == [
        "!! Usage: /kick NAME [REASON]. Type /help kick for more.",
        "!! No one called 'nobody' is online. Type /who to see who is online.",
    ]
    assert alice.user in room(factory)


def test_admin_kick_still_disconnects(factory, games):
    """The admin shell's kick (Chat.kick) still disconnects the user."""
    alice, bob, carol = games
    factory.chat.kick("bob", "spam")
    assert bob.closed


# -- /ban, /unban ----------------------------------------------------------------------------


def test_ban_keeps_out_and_silences(factory, connect, games):
    """A ban keeps matching people out, whatever case or width they type, and silences members."""
    alice, bob, carol = games
    alice.send("/ban BOB", "/ban Ｄａｖｅ*")
    assert carol.take() == ["-- alice banned BOB in #games", "-- alice banned Ｄａｖｅ* in #games"]
    bob.take()
    bob.send("hello")
    assert bob.take() == ["!! You are banned from #games and cannot speak there: ask an "
                          "operator to /unban you."]
    assert carol.take() == []
    alice.send("/kick bob")
    bob.take()
    bob.send("/join games")
    refused = ("!! You are banned from #games: ask one of its operators to /unban you. "
               "Type /rooms to find another room.")
    assert bob.take() == [refused]
    dave = connect("DAVEY")
    dave.send("/join games")
    assert dave.take() == [refused]
    alice.send("/ban")
    assert alice.take()[-1] == ("-- Bans in #games: BOB, Ｄａｖｅ*. Type /unban MASK to "
                                "lift one.")
    alice.send("/unban bob")
    assert alice.take() == ["-- alice lifted the ban on BOB in #games"]
    bob.send("/join games")
    assert bob.user in room(factory)


def test_ban_refused(factory, games):
    alice, bob, carol = games
    bob.send("/ban alice", "/unban alice")
    assert bob.take() == [
        "!! You are not an operator of #games. Type /look to see the operators (marked @)."] * 2
    alice.send("/unban nobody", "/unban")
    assert alice.take() == [
        "!! There is no ban on nobody. Type /help mode for the modes.",
        "!! Usage: /unban MASK. Type /help unban for more.",
    ]


# -- /invite and invite-only ------------------------------------------------------------------


def test_invite_only(factory, connect, games):
    """+i keeps out the uninvited; an invite lets one in, once."""
    alice, bob, carol = games
    dave = connect("dave")
    for client in games:
        client.take()
    alice.send("/mode +i")
    assert carol.take() == ["-- alice made the room invite-only in #games"]
    dave.send("/join games")
    assert dave.take() == ["!! #games is invite-only: ask an operator to /invite you."]
    bob.take()
    bob.send("/invite dave")
    assert bob.take() == [
        "!! You are not an operator of #games. Type /look to see the operators (marked @)."]
    alice.take()
    alice.send("/invite dave")
    assert alice.take() == ["-- You invited dave to #games; they have been told."]
    assert dave.take() == ["-- alice invites you to #games: type /join #games to enter"]
    dave.send("/join games")
    assert dave.user in room(factory)
    dave.send("/leave games")
    dave.take()
    dave.send("/join games")
    assert dave.take() == ["!! #games is invite-only: ask an operator to /invite you."]


def test_invite_refused(factory, games):
    alice, bob, carol = games
    bob.send("/invite carol", "/invite nobody", "/invite")
    assert bob.take() == [
        "!! carol is already in #games.",
        "!! No one called 'nobody' is online. Type /who to see who is online.",
        "!! Usage: /invite NAME. Type /help invite for more.",
    ]


# -- /mode ----------------------------------------------------------------------------------


def test_moderated(factory, games):
    """+m: only operators and voiced members speak."""
    alice, bob, carol = games
    alice.send("/mode +m", "/voice carol")
    bob.take()
    bob.send("hello", "/me waves")
    assert bob.take() == [
        "!! #games is moderated: only its operators and voiced members can speak. "
        "Ask an operator to /voice you."] * 2
    carol.send("hi")
    alice.send("welcome")
    assert bob.take() == ["<carol> hi", "<alice> welcome"]


def test_topic_for_operators(factory, games):
    """+t: only operators set the topic."""
    alice, bob, carol = games
    bob.send("/topic mine")
    alice.send("/mode +t")
    bob.send("/topic mine again")
    assert bob.take()[-1] == ("!! Only the operators of #games can set its topic. Type /look "
                              "to see the operators (marked @).")
    alice.send("/topic ours")
    assert room(factory).topic == "ours"


def test_key_and_limit(factory, connect, games):
    """+k needs the key to join; +l caps the members; /mode shows them."""
    alice, bob, carol = games
    dave, eve = connect("dave"), connect("eve")
    dave.take()
    for client in games:
        client.take()
    alice.send("/mode +k sesame")
    assert carol.take() == ["-- alice set the key sesame in #games"]
    dave.send("/join games", "/join games wrong", "/join games sesame")
    assert dave.take()[:2] == [
        "!! #games needs a key: /join #games KEY.",
        "!! That is not the key of #games: /join #games KEY with the right one.",
    ]
    assert dave.user in room(factory)
    alice.send("/mode -k", "/mode +l 4")
    eve.send("/join games")
    assert eve.take() == ["!! #games is full (4 members at most): try again later, or ask an "
                          "operator to /invite you."]
    alice.send("/mode")
    assert alice.take()[-1] == ("-- #games modes: +ln (at most 4 members). Type /help mode to "
                                "change them.")
    alice.send("/invite eve")
    eve.take()
    eve.send("/join games")
    assert eve.user in room(factory)


def test_secret_rooms_are_hidden(factory, connect, games):
    """+s hides a room from /rooms and /who for non-members."""
    alice, bob, carol = games
    dave = connect("dave")
    alice.send("/mode +s")
    dave.send("/rooms", "/who alice")
    lines = dave.take()
    assert not any("#games" in line for line in lines), lines
    bob.send("/rooms")
    assert any(line.startswith("--   #games (3 users) [+ns]") for line in bob.take())


def test_mode_refused(factory, games):
    """Unknown modes, bad values and non-operators are each explained."""
    alice, bob, carol = games
    bob.send("/mode +m")
    assert bob.take() == [
        "!! You are not an operator of #games. Type /look to see the operators (marked @)."]
    alice.send("/mode +x", "/mode +l many", "/mode +k", "/mode i", "/mode +m", "/mode +m",
               "/mode -n", "/mode +n")
    lines = alice.take()
    assert lines[0] == ("!! There is no mode 'x': the modes are +i, +m, +t, +s, +k KEY and +l N. "
                        "Type /help mode for the modes.")
    assert lines[1].startswith("!! A member limit is a number from 1 to")
    assert lines[2] == ("!! Mode +k needs an argument, such as +k KEY. Type /help mode for the "
                        "modes.")
    assert lines[3] == "!! Usage: /mode [CHANGES]. Type /help mode for more."
    assert lines[4] == "-- alice made the room moderated in #games"
    assert lines[5] == "-- Nothing changed: #games modes are +mn."
    assert lines[6] == ("!! Mode +n is always on: only members talk in a room. Type /help mode "
                        "for the modes.")
    assert lines[7] == "-- Nothing changed: #games modes are +mn."


def test_look_shows_modes(factory, games):
    alice, bob, carol = games
    alice.send("/mode +mt")
    carol.take()
    carol.send("/look")
    assert carol.take()[0] == "-- You are in #games (modes +mnt)."


def test_help_explains_the_moderation_commands(connect):
    """Every moderation command has a /help."""
    alice = connect("alice")
    for name in ("op", "deop", "voice", "devoice", "kick", "ban", "unban", "invite", "mode"):
        assert name in ChatCommands.command_names()
        alice.send(f"/help {name}")
        lines = alice.take()
        assert lines[0].startswith(f"-- /{name}") and len(lines[1]) > 30, lines


# -- the server's operator ---------------------------------------------------------------------


def test_server_operator_outranks_room_operators(factory, games):
    """The admin shell acts as the server's operator in any room, the default room too."""
    alice, bob, carol = games
    chat = factory.chat
    chat.moderation.op(chat.rooms["lobby"], None, "bob")
    assert chat.rooms["lobby"].moderation.operators == {"bob"}
    chat.moderation.kick(room(factory), None, "alice", "enough")
    assert carol.take()[-1] == "<- alice was kicked out of #games by the server operator (enough)"


def test_admin_helpers(factory, games, capsys):
    """The admin shell's op, ban and modes act as the server's operator and say what they did."""
    from chatservice.admin.namespace import AdminHelpers

    alice, bob, carol = games
    helpers = AdminHelpers(factory.chat, None)
    helpers.op("games", "bob")
    helpers.op("lobby", "carol")
    helpers.op("games", "nobody")
    helpers.ban("#games", "spam*")
    factory.chat.moderation.set_modes(room(factory), None, parse_modes(["+mk", "sesame"]))
    helpers.modes("games")
    assert capsys.readouterr().out.splitlines() == [
        "bob is now an operator of #games.",
        "carol is now an operator of #lobby.",
        "No one called 'nobody' is online. (room(name) lists a room's members)",
        "spam* is now banned from #games.",
        "#games modes +kmn sesame",
        "  operators: alice, bob",
        "  voiced: none",
        "  bans: spam*",
        "  invited: none",
    ]
    assert carol.take()[0] == "-- The server operator made bob an operator in #games"
