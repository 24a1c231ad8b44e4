"""
Every slash command of L{chatservice.frontends.line.commands}, with its replies, its usage
and error messages, and what the other users see.
"""

import re

import pytest
from conftest import FakeClient

from chatservice.frontends.line import commands
from chatservice.frontends.line.commands import ALIASES, ChatCommands

NOT_IN_ROOM = "!! You are not in any room. Type /join ROOM to enter a room."


@pytest.fixture
def trio(connect):
    """alice, bob and carol logged in, in #lobby, with their output read."""
    alice, bob, carol = connect("alice"), connect("bob"), connect("carol")
    alice.take()
    bob.take()
    return alice, bob, carol


def drain(*clients: FakeClient) -> None:
    """Forget what the clients were sent so far."""
    for client in clients:
        client.take()


# -- the table ----------------------------------------------------------------------


def in_order(expected, actual) -> bool:
    """Whether C{expected} appears in C{actual} as a subsequence (other items may come between)."""
    remaining = iter(actual)
    return all(item in remaining for item in expected)


def test_command_names_in_help_order():
    """The core commands exist, in the order /help lists them (new ones may come between)."""
    names = ChatCommands.command_names()
    assert in_order([
        "help", "motd", "who", "look", "rooms", "join", "leave", "msg", "me", "nick",
        "topic", "say", "ping", "quit",
    ], names), names
    assert names[0] == "help" and names[-1] == "quit"


def test_every_alias_points_to_a_command():
    """Each alias names an existing command."""
    for alias, target in ALIASES.items():
        assert target in ChatCommands.command_names(), alias


@pytest.mark.parametrize("typed", ["/PING x", "/Ping x", "/ping x"])
def test_commands_are_case_insensitive(connect, typed):
    """Command names are matched regardless of case."""
    alice = connect("alice")
    alice.send(typed)
    assert alice.take() == ["PONG x"]


# -- /help ----------------------------------------------------------------------------


def test_help_lists_every_command(connect):
    """/help lists each command with its synopsis and first sentence, header and footer around."""
    alice = connect("alice")
    alice.send("/help")
    lines = alice.take()
    assert lines[0] == "-- Commands (type /help COMMAND for more about one):"
    assert lines[-1] == "-- Anything else you type is said to your current room."
    assert len(lines) == len(ChatCommands.command_names()) + 2
    assert in_order([
        "--   /help [COMMAND]        List the commands, or explain COMMAND (for example: /help join)",
        "--   /who [NAME]            List everyone online and the rooms they are in, or show one user",
        "--   /look                  Show your current room: its topic and who is in it",
        "--   /rooms [PATTERN]       List the rooms, the largest first, with how many people "
        "are in each and their topics",
        "--   /join ROOM [KEY]       Enter ROOM, creating it if it does not exist, and make it "
        "your current room: what you type goes there",
        "--   /leave [ROOM]          Leave ROOM (or your current room)",
        "--   /msg NAME TEXT         Send TEXT privately to NAME; only they see it",
        '--   /me TEXT               Describe an action: /me waves shows "* NAME waves" to your room',
        "--   /nick NEWNAME          Change your name; the people in your rooms are told",
        "--   /topic [TEXT]          Show your current room's topic, or set it to TEXT (/topic - clears it)",
        "--   /say TEXT              Say TEXT to your current room exactly as typed, even if it "
        "starts with a slash",
        '--   /ping [TOKEN]          Answer at once with "PONG TOKEN" (for scripts and health checks)',
        "--   /quit [MESSAGE]        Leave the chat; your rooms see MESSAGE",
    ], lines), lines


def test_help_command(connect):
    """/help COMMAND shows its synopsis and its whole explanation."""
    alice = connect("alice")
    alice.send("/help join")
    assert alice.take() == [
        "-- /join ROOM [KEY]",
        "--   Enter ROOM, creating it if it does not exist, and make it your current room: "
        "what you type goes there. Whoever creates a room is its operator. You stay in your "
        "other rooms, and lines from them are shown with the room's name. KEY is the room's "
        "password, if it has one (/mode +k).",
    ]


@pytest.mark.parametrize("typed", ["/help part", "/help /PART", "/help leave"])
def test_help_alias_shows_the_command_and_its_aliases(connect, typed):
    """/help of a command or one of its aliases explains the command and lists the aliases."""
    alice = connect("alice")
    alice.send(typed)
    assert alice.take() == [
        "-- /leave [ROOM]",
        "--   Leave ROOM (or your current room). Rooms that become empty disappear, "
        "except the default room.",
        "--   Also: /part",
    ]


def test_help_quit_lists_both_aliases(connect):
    """/help quit lists /logout and /exit."""
    alice = connect("alice")
    alice.send("/help quit")
    assert alice.take() == [
        "-- /quit [MESSAGE]",
        "--   Leave the chat; your rooms see MESSAGE.",
        "--   Also: /logout, /exit",
    ]


def test_help_unknown(connect):
    """/help of something that is no command says so, shortening a long name."""
    alice = connect("alice")
    alice.send("/help nosuch", "/help " + "z" * 30)
    assert alice.take() == [
        "!! There is no command /nosuch. Type /help for the list.",
        "!! There is no command /" + "z" * 20 + ". Type /help for the list.",
    ]


# -- /who -------------------------------------------------------------------------------


def test_who_lists_everyone_and_their_rooms(trio):
    """/who lists every user, sorted, with the rooms they are in (@: an operator there)."""
    alice, bob, carol = trio
    bob.send("/join games")
    alice.send("/who")
    assert alice.take() == [
        "-- 3 users online:",
        "--   alice (#lobby)",
        "--   bob (#lobby, @#games)",
        "--   carol (#lobby)",
    ]


def test_who_singular_and_no_room(connect):
    """/who says '1 user' and 'no room' for a user in no room."""
    alice = connect("alice")
    alice.send("/leave")
    alice.take()
    alice.send("/who")
    assert alice.take() == ["-- 1 user online:", "--   alice (no room)"]


def test_who_name(trio):
    """/who NAME shows one user, whatever case is typed."""
    alice, bob, carol = trio
    bob.send("/join games")
    alice.send("/who bob", "/who BOB", "/who ｂｏｂ")
    assert alice.take() == ["-- bob is online, in #lobby, @#games."] * 3


def test_who_unknown(connect):
    """/who of someone not online says so and what to type."""
    alice = connect("alice")
    alice.send("/who nobody")
    assert alice.take() == [
        "!! No one called 'nobody' is online. Type /who to see who is online."]


def test_who_listing_is_capped(trio, monkeypatch):
    """Past MAX_LISTED users /who says how many more there are."""
    alice, bob, carol = trio
    monkeypatch.setattr(commands, "MAX_LISTED", 2)
    alice.send("/who")
    assert alice.take() == [
        "-- 3 users online:",
        "--   alice (#lobby)",
        "--   bob (#lobby)",
        "--   ... and 1 more. Type /who NAME to look one up.",
    ]


def test_who_costs_what_it_shows(connect, factory):
    """
    /who on a big server lists the first MAX_LISTED names without walking
    every user (it sorted all of them on each call: 2.2 ms for 10,000).
    """
    factory.chat.limits.max_per_address = 0
    for n in range(250):
        connect(f"u{n:03d}")
    alice = connect("alice")

    class Watched(dict):
        """The users, refusing to be walked through."""

        def walked(self, *args):
            raise AssertionError("/who walked every user")

        values = items = keys = __iter__ = walked

    factory.chat.users = Watched(factory.chat.users)
    alice.send("/who")
    lines = alice.take()
    assert lines[:3] == ["-- 251 users online:", "--   alice (#lobby)", "--   u000 (#lobby)"]
    assert lines[100:] == ["--   u098 (#lobby)", "--   ... and 151 more. Type /who NAME to look one up."]
    alice.send("/nick zed")
    alice.take()
    alice.send("/who")
    lines = alice.take()
    assert lines[1] == "--   u000 (#lobby)" and "zed" not in " ".join(lines)


# -- /look ------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["/look", "/names"])
def test_look(trio, typed):
    """/look (alias /names) shows the current room and its members in order of arrival."""
    alice, bob, carol = trio
    alice.send(typed)
    assert alice.take() == ["-- You are in #lobby.", "-- 3 users here: alice, bob, carol"]


def test_look_listing_is_capped(trio, monkeypatch):
    """Past MAX_LISTED members /look says how many more there are."""
    alice, bob, carol = trio
    monkeypatch.setattr(commands, "MAX_LISTED", 2)
    alice.send("/look")
    assert alice.take() == ["-- You are in #lobby.", "-- 3 users here: alice, bob and 1 more"]


def test_join_listing_is_capped(trio, connect, monkeypatch):
    """Joining a busy room lists the first MAX_LISTED others, then how many more."""
    monkeypatch.setattr(commands, "MAX_LISTED", 2)
    dave = connect()
    dave.send("dave")
    assert "-- Here with you: alice, bob and 1 more (4 users)" in dave.take()


def test_look_with_topic(trio):
    """/look shows the topic when there is one."""
    alice, bob, carol = trio
    bob.send("/topic Rust vs Python")
    alice.take()
    alice.send("/look")
    assert alice.take() == [
        "-- You are in #lobby. Topic: Rust vs Python",
        "-- 3 users here: alice, bob, carol",
    ]


def test_look_alone(connect):
    """/look in a room of one says '1 user'."""
    alice = connect("alice")
    alice.send("/look")
    assert alice.take() == ["-- You are in #lobby.", "-- 1 user here: alice"]


def test_look_without_room(connect):
    """/look with no current room is an error that says what to type."""
    alice = connect("alice")
    alice.send("/leave")
    alice.take()
    alice.send("/look")
    assert alice.take() == [NOT_IN_ROOM]


def test_look_keeps_arrival_order_after_rename(trio):
    """A rename does not move the user to the end of the member list."""
    alice, bob, carol = trio
    alice.send("/nick alicia")
    alice.take()
    alice.send("/look")
    assert alice.take() == ["-- You are in #lobby.", "-- 3 users here: alicia, bob, carol"]


# -- /rooms -------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["/rooms", "/list"])
def test_rooms(trio, typed):
    """/rooms (alias /list) lists rooms by size then name, marking current and joined ones."""
    alice, bob, carol = trio
    bob.send("/join games", "/topic cards", "/join zoo")
    alice.send("/join books")
    alice.take()
    alice.send(typed)
    assert alice.take() == [
        "-- 4 rooms:",
        "--   #lobby (3 users) (joined)",
        "--   #books (1 user) (current)",
        "--   #games (1 user): cards",
        "--   #zoo (1 user)",
        "-- Type /join ROOM to enter one, or to create a new one.",
    ]


def test_rooms_listing_is_capped(trio, monkeypatch):
    """Past MAX_LISTED rooms /rooms says how many more there are and how to narrow it down."""
    alice, bob, carol = trio
    bob.send("/join b1", "/join b2")
    monkeypatch.setattr(commands, "MAX_LISTED", 1)
    alice.send("/rooms")
    assert alice.take() == [
        "-- 3 rooms:",
        "--   #lobby (3 users) (current)",
        "--   ... and 2 more: type /rooms PATTERN to narrow it down (the start of a name, "
        "or a pattern with *, such as /rooms *chat*).",
        "-- Type /join ROOM to enter one, or to create a new one.",
    ]


def test_rooms_largest_first_as_sizes_change(connect):
    """The listing follows joins and leaves: largest first, then by name; emptied rooms go."""
    users = [connect(f"u{n}") for n in range(4)]
    users[0].send("/join zeta", "/join alpha")
    users[1].send("/join zeta", "/join beta")
    users[2].send("/join zeta", "/join beta", "/leave lobby")
    users[3].send("/join gamma", "/leave gamma")
    me = users[3]
    me.take()
    me.send("/rooms")
    assert me.take() == [
        "-- 4 rooms:",
        "--   #lobby (3 users) (current)",
        "--   #zeta (3 users)",
        "--   #beta (2 users)",
        "--   #alpha (1 user)",
        "-- Type /join ROOM to enter one, or to create a new one.",
    ]
    users[2].send("/leave zeta")
    users[2].send("/leave beta")
    users[1].send("/leave beta")
    me.send("/rooms")
    assert me.take() == [
        "-- 3 rooms:",
        "--   #lobby (3 users) (current)",
        "--   #zeta (2 users)",
        "--   #alpha (1 user)",
        "-- Type /join ROOM to enter one, or to create a new one.",
    ]


@pytest.fixture
def many_rooms(connect):
    """alice in #lobby; 12 others each make a room: game0..game9, chat, chess."""
    names = [f"game{n}" for n in range(10)] + ["chat", "chess"]
    for n, room in enumerate(names):
        connect(f"maker{n}").send(f"/join {room}")
    alice = connect("alice")
    alice.send("/join games")
    alice.take()
    return alice


def test_rooms_prefix(many_rooms, monkeypatch):
    """/rooms PREFIX lists the rooms whose names start with it, by name, with their count."""
    alice = many_rooms
    monkeypatch.setattr(commands, "MAX_LISTED", 3)
    alice.send("/rooms GAME")
    assert alice.take() == [
        "-- Rooms whose names start with GAME: 11 of 14",
        "--   #game0 (1 user)",
        "--   #game1 (1 user)",
        "--   #game2 (1 user)",
        "--   ... and 8 more: type a longer PATTERN to narrow it down.",
        "-- Type /join ROOM to enter one, or to create a new one.",
    ]
    alice.send("/rooms #ches*")
    assert alice.take() == [
        "-- Rooms whose names start with ches*: 1 of 14",
        "--   #chess (1 user)",
        "-- Type /join ROOM to enter one, or to create a new one.",
    ]
    alice.send("/rooms games")
    assert alice.take()[:2] == [
        "-- Rooms whose names start with games: 1 of 14", "--   #games (1 user) (current)"]


def test_rooms_prefix_none(many_rooms):
    """A prefix no room has says so and what to type."""
    alice = many_rooms
    alice.send("/rooms music")
    assert alice.take() == [
        "-- No room's name starts with music (14 rooms in all). "
        "Type /rooms to see the largest rooms.",
        "-- Type /join ROOM to enter one, or to create a new one.",
    ]


def test_rooms_star_alone_lists_by_name(many_rooms, monkeypatch):
    """/rooms * lists every room by name."""
    alice = many_rooms
    monkeypatch.setattr(commands, "MAX_LISTED", 2)
    alice.send("/rooms *")
    assert alice.take() == [
        "-- 14 rooms, by name:",
        "--   #chat (1 user)",
        "--   #chess (1 user)",
        "--   ... and 12 more: type a longer PATTERN to narrow it down.",
        "-- Type /join ROOM to enter one, or to create a new one.",
    ]


@pytest.mark.parametrize("typed, expected", [
    ("/rooms *s", ["chess", "games"]),
    ("/rooms c*s*", ["chess"]),
    ("/rooms *a*e*", ["game0", "game1", "game2", "game3", "game4", "game5", "game6",
                      "game7", "game8", "game9", "games"]),
    ("/rooms g**e*s", ["games"]),
    ("/rooms *h*t", ["chat"]),
    ("/rooms ch*at", ["chat"]),
    ("/rooms chat*chat", []),
])
def test_rooms_glob(many_rooms, typed, expected):
    """A * anywhere stands for any letters (none included); matches are listed by name."""
    alice = many_rooms
    alice.send(typed)
    lines = alice.take()
    shown = [line.split()[1][1:] for line in lines if line.startswith("--   #")]
    assert shown == expected
    if expected:
        assert lines[0] == f"-- Rooms whose names match {typed.split()[1]}: {len(expected)} of 14"
    else:
        assert lines[0] == (f"-- No room's name matches {typed.split()[1]} (14 rooms in all). "
                            "Type /rooms to see the largest rooms.")


def test_rooms_glob_search_is_bounded(many_rooms, monkeypatch):
    """A pattern with * inside examines at most MAX_ROOMS_SEARCHED rooms, and says so."""
    alice = many_rooms
    monkeypatch.setattr(commands, "MAX_ROOMS_SEARCHED", 4)
    monkeypatch.setattr(commands, "MAX_LISTED", 2)
    alice.send("/rooms game*")  # a prefix: exact, however many
    assert alice.take()[0] == "-- Rooms whose names start with game*: 11 of 14"
    alice.send("/rooms g*e*")
    assert alice.take() == [
        "-- Rooms whose names match g*e*: 4 among the first 4 of the 11 rooms whose "
        "names start with g",
        "--   #game0 (1 user)",
        "--   #game1 (1 user)",
        "--   ... and 2 more: type a longer PATTERN to narrow it down.",
        "--   The search stopped after 4 rooms: put more letters before the first * "
        "to search them all.",
        "-- Type /join ROOM to enter one, or to create a new one.",
    ]
    alice.send("/rooms *9")
    assert alice.take() == [
        "-- Rooms whose names match *9: 0 among the first 4 of the 14 rooms",
        "--   The search stopped after 4 rooms: put more letters before the first * "
        "to search them all.",
        "-- Type /join ROOM to enter one, or to create a new one.",
    ]


@pytest.mark.parametrize("typed", ["/rooms ga!me", "/rooms *.*"])
def test_rooms_bad_pattern(many_rooms, typed):
    """A pattern with characters no room name has is refused, saying what to type."""
    alice = many_rooms
    alice.send(typed)
    [line] = alice.take()
    assert line.startswith("!! A room name may only contain letters, digits, '_' and '-'")
    assert line.endswith("Type /rooms PATTERN with the start of a name, or with * for any "
                         "letters, such as /rooms game or /rooms *chat*.")


def test_rooms_usage(connect):
    """/rooms takes one pattern at most."""
    alice = connect("alice")
    alice.send("/rooms a b")
    assert alice.take() == ["!! Usage: /rooms [PATTERN]. Type /help rooms for more."]


def test_rooms_costs_what_it_shows(connect, factory, monkeypatch):
    """
    /rooms with thousands of rooms looks at about as many rooms as it shows
    (it used to sort them all on every call: 28 ms for 19,000 rooms).
    """
    from chatservice.core.room import Room

    factory.chat.limits.max_rooms_per_user = 0
    maker = connect("maker")
    maker.send(*[f"/join r{n:04d}" for n in range(3000)])
    maker.send("/join lobby")
    alice = connect("alice")
    counted = [0]
    real_len = Room.__len__

    def counting_len(room):
        counted[0] += 1
        return real_len(room)

    monkeypatch.setattr(Room, "__len__", counting_len)
    for typed in ("/rooms", "/rooms r1", "/rooms r*9", "/rooms *9*"):
        counted[0] = 0
        alice.send(typed)
        assert counted[0] <= 2 * commands.MAX_LISTED, (typed, counted[0])
    lines = alice.take()
    assert lines[0] == "-- 3,001 rooms:"
    assert lines[1:3] == ["--   #lobby (2 users) (current)", "--   #r0000 (1 user)"]
    assert "--   ... and 2,901 more: type /rooms PATTERN" in lines[101]


# -- /join ----------------------------------------------------------------------------------


def test_join_new_room(trio, factory):
    """/join of a new room creates it, makes it current, and tells nobody else."""
    alice, bob, carol = trio
    alice.send("/join games")
    assert alice.take() == ["-> You joined #games", "-- You are alone in #games."]
    assert bob.take() == [] and carol.take() == []
    assert alice.user.current is factory.chat.rooms["games"]
    assert list(alice.user.rooms) == ["lobby", "games"]


def test_join_existing_room(trio):
    """/join of an existing room shows topic and members; its members are told."""
    alice, bob, carol = trio
    bob.send("/join games", "/topic poker night")
    alice.send("/join #games")
    assert alice.take() == [
        "-> You joined #games",
        "-- Topic: poker night",
        "-- Here with you: @bob (2 users)",
    ]
    assert bob.take()[-1] == "-> alice joined #games"
    assert carol.take() == []


def test_join_room_already_in_switches_to_it(trio):
    """/join of a room one is in only makes it current, telling nobody."""
    alice, bob, carol = trio
    alice.send("/join games")
    bob.send("/join games")
    drain(alice, bob)
    alice.send("/join lobby")
    assert alice.take() == ["-- You are now talking in #lobby."]
    alice.send("/join GAMES")
    assert alice.take() == ["-- You are now talking in #games."]
    assert bob.take() == [] and carol.take() == []
    assert alice.user.current.name == "games"


@pytest.mark.parametrize("typed", ["/join games", "/join #games", "/join ＃ｇａｍｅｓ", "/join ##games"])
def test_join_hash_is_optional(connect, factory, typed):
    """A leading '#' (or several, or fullwidth) is not part of the room name."""
    alice = connect("alice")
    alice.send(typed)
    assert alice.take()[0] == "-> You joined #games"
    assert set(factory.chat.rooms) == {"lobby", "games"}


def test_join_keeps_case_of_first_creator(trio, factory):
    """A room is shown as first created; other cases reach the same room."""
    alice, bob, carol = trio
    alice.send("/join Games")
    bob.send("/join games")
    assert bob.take()[0] == "-> You joined #Games"
    assert list(factory.chat.rooms) == ["lobby", "games"]


@pytest.mark.parametrize(
    "typed, error",
    [
        ("/join bad!", "A room name may only contain letters, digits, '_' and '-' (not '!')."),
        ("/join #", "A room name cannot be empty."),
        ("/join \x1b[31m", "A room name cannot be empty."),
        ("/join " + "r" * 33, "That room name is 33 characters long; the limit is 32."),
    ],
)
def test_join_invalid_room_name(connect, factory, typed, error):
    """An invalid room name is refused with the reason and an example."""
    alice = connect("alice")
    alice.send(typed)
    assert alice.take() == [f"!! {error} Type /join ROOM with a name such as /join games."]
    assert set(factory.chat.rooms) == {"lobby"}


@pytest.mark.parametrize("typed", ["/join", "/join   ", "/join a b c"])
def test_join_usage(connect, typed):
    """/join needs one room name, and at most one key."""
    alice = connect("alice")
    alice.send(typed)
    assert alice.take() == ["!! Usage: /join ROOM [KEY]. Type /help join for more."]


def test_join_longest_room_name(connect):
    """A room name of exactly 32 characters is accepted."""
    alice = connect("alice")
    alice.send("/join " + "r" * 32)
    assert alice.take()[0] == "-> You joined #" + "r" * 32


# -- /leave -----------------------------------------------------------------------------------


def test_leave_current_falls_back_to_last_joined(trio):
    """/leave leaves the current room; the most recently joined remaining one becomes current."""
    alice, bob, carol = trio
    alice.send("/join games", "/join music")
    bob.send("/join music")
    drain(alice, bob)
    alice.send("/leave")
    assert alice.take() == ["<- You left #music", "-- You are now talking in #games."]
    assert bob.take() == ["<- alice left #music"]
    assert carol.take() == []
    assert alice.user.current.name == "games"


@pytest.mark.parametrize("typed", ["/leave games", "/leave #games", "/part games"])
def test_leave_named_room(trio, typed):
    """/leave ROOM (alias /part) leaves that room; the current room stays current."""
    alice, bob, carol = trio
    alice.send("/join games")
    bob.send("/join games")
    alice.send("/join lobby")
    drain(alice, bob)
    alice.send(typed)
    assert alice.take() == ["<- You left #games"]
    assert bob.take() == ["<- alice left #games"]
    assert alice.user.current.name == "lobby"


def test_leave_room_not_a_member_of(trio):
    """/leave of an existing room one is not in is an error."""
    alice, bob, carol = trio
    bob.send("/join games")
    alice.send("/leave games")
    assert alice.take() == ["!! You are not in #games. Type /join ROOM to enter a room."]


def test_leave_unknown_room(connect):
    """/leave of a room that does not exist is an error pointing to /rooms."""
    alice = connect("alice")
    alice.send("/leave nosuch")
    assert alice.take() == ["!! There is no room called #nosuch. Type /rooms to see the rooms."]


def test_leave_usage(connect):
    """/leave takes at most one room name."""
    alice = connect("alice")
    alice.send("/leave a b")
    assert alice.take() == ["!! Usage: /leave [ROOM]. Type /help leave for more."]


def test_leave_last_room_leaves_no_current_room(trio, factory):
    """Leaving the last room leaves the user in no room; talking is then an error."""
    alice, bob, carol = trio
    alice.send("/leave")
    assert alice.take() == [
        "<- You left #lobby",
        "-- You are not in any room now. Type /join ROOM to enter one.",
    ]
    assert bob.take() == ["<- alice left #lobby"]
    assert alice.user.current is None and alice.user.rooms == {}
    alice.send("/leave", "hello", "/me waves", "/say hi", "/topic", "/topic x")
    assert alice.take() == [NOT_IN_ROOM] * 6
    assert bob.take() == []
    alice.send("/join lobby")
    assert alice.take()[0] == "-> You joined #lobby"


def test_default_room_persists_when_empty(connect, factory):
    """The default room stays when its last member leaves."""
    alice = connect("alice")
    alice.send("/leave")
    assert "lobby" in factory.chat.rooms
    assert len(factory.chat.rooms["lobby"]) == 0


def test_empty_room_disappears(trio, factory):
    """A non-default room disappears when its last member leaves; its topic is gone too."""
    alice, bob, carol = trio
    alice.send("/join games", "/topic old topic")
    bob.send("/join games")
    bob.send("/leave games")
    assert "games" in factory.chat.rooms
    alice.send("/leave games")
    assert "games" not in factory.chat.rooms
    alice.send("/join games")
    drain(alice)
    alice.send("/topic")
    assert alice.take() == ["-- #games has no topic. Type /topic TEXT to set one."]


# -- /msg -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["msg", "tell", "whisper", "MSG"])
def test_msg(trio, command):
    """/msg (aliases /tell, /whisper) reaches only its target; the sender sees a copy."""
    alice, bob, carol = trio
    alice.send(f"/{command} BOB  hello there  ")
    assert alice.take() == ["[private to bob] <alice> hello there"]
    assert bob.take() == ["[private] <alice> hello there"]
    assert carol.take() == []


def test_msg_reaches_user_in_no_shared_room(trio):
    """A private message needs no shared room."""
    alice, bob, carol = trio
    bob.send("/leave")
    bob.take()
    alice.send("/msg bob psst")
    assert bob.take() == ["[private] <alice> psst"]


def test_msg_unknown_user(connect):
    """/msg to someone not online is an error pointing to /who."""
    alice = connect("alice")
    alice.send("/msg nobody hi")
    [line] = alice.take()
    assert re.fullmatch(
        r"!! No one called 'nobody' is online( or registered)?\. "
        r"Type /who to see who is online\.", line), line


@pytest.mark.parametrize("typed", ["/msg", "/msg bob", "/msg bob    "])
def test_msg_usage(trio, typed):
    """/msg without a name or a text shows the usage and sends nothing."""
    alice, bob, carol = trio
    alice.send(typed)
    assert alice.take() == ["!! Usage: /msg NAME TEXT. Type /help msg for more."]
    assert bob.take() == []


def test_msg_text_empty_after_sanitising(trio):
    """A private message of control characters only is refused."""
    alice, bob, carol = trio
    alice.send("/msg bob \x1b[2J\x07")
    assert alice.take() == ["!! There is nothing to send."]
    assert bob.take() == []


def test_msg_text_sanitised_for_target(trio):
    """The target never sees escapes or bidi controls in a private message."""
    alice, bob, carol = trio
    alice.send("/msg bob \x1b[31mred\u202e")
    assert bob.take() == ["[private] <alice> red"]


def test_msg_echo_shows_what_was_delivered(trio):
    """The sender's copy of a private message is the sanitised text the target got."""
    alice, bob, carol = trio
    alice.send("/msg bob \x1b[31mred\u202e")
    assert b"\x1b" not in alice.output()
    assert alice.take() == ["[private to bob] <alice> red"]


# -- /me -----------------------------------------------------------------------------------------


def test_me(trio):
    """/me shows '* NAME TEXT' to the room, not to the sender."""
    alice, bob, carol = trio
    alice.send("/me waves at everyone")
    assert bob.take() == ["* alice waves at everyone"]
    assert carol.take() == ["* alice waves at everyone"]
    assert alice.take() == []


def test_me_in_non_current_room_is_tagged(trio):
    """An action in a room that is not the recipient's current one carries the room tag."""
    alice, bob, carol = trio
    alice.send("/join games")
    bob.send("/join games", "/join lobby")
    drain(bob)
    alice.send("/me deals")
    assert bob.take() == ["[#games] * alice deals"]
    assert carol.take() == []


@pytest.mark.parametrize("typed", ["/me", "/me    "])
def test_me_usage(connect, typed):
    """/me without text shows the usage."""
    alice = connect("alice")
    alice.send(typed)
    assert alice.take() == ["!! Usage: /me TEXT. Type /help me for more."]


def test_me_only_controls(trio):
    """/me of control characters only says there is nothing to say."""
    alice, bob, carol = trio
    alice.send("/me \x07\x1b[1m")
    assert alice.take() == ["!! There is nothing to say."]
    assert bob.take() == []


# -- /nick ------------------------------------------------------------------------------------------


def test_nick(trio, factory):
    """/nick renames; the user and their neighbours are told; the old name is free."""
    alice, bob, carol = trio
    alice.send("/nick alicia")
    assert alice.take() == ["-- You are now known as alicia (was alice)."]
    assert bob.take() == ["-- alice is now known as alicia"]
    assert carol.take() == ["-- alice is now known as alicia"]
    assert set(factory.chat.users) == {"alicia", "bob", "carol"}
    assert "alicia" in factory.chat.rooms["lobby"].members
    bob.send("hi")
    assert alice.take() == ["<bob> hi"]
    alice.send("hey")
    assert bob.take() == ["<alicia> hey"]


def test_nick_old_name_free(trio, factory):
    """After a rename, someone else can log in with the old name."""
    alice, bob, carol = trio
    alice.send("/nick alicia")
    newcomer = FakeClient(factory)
    newcomer.send("alice")
    assert newcomer.user.name == "alice"


def test_nick_neighbours_in_two_rooms_told_once(trio):
    """Someone sharing two rooms with the renamed user is told once; strangers not at all."""
    alice, bob, carol = trio
    alice.send("/join games")
    bob.send("/join games")
    carol.send("/leave")
    drain(alice, bob, carol)
    alice.send("/nick alicia")
    assert bob.take() == ["-- alice is now known as alicia"]
    assert carol.take() == []


def test_nick_case_change_of_own_name(trio, factory):
    """Changing only the case of one's own name is allowed."""
    alice, bob, carol = trio
    alice.send("/nick ALICE")
    assert alice.take() == ["-- You are now known as ALICE (was alice)."]
    assert bob.take() == ["-- alice is now known as ALICE"]
    assert factory.chat.users["alice"].name == "ALICE"


@pytest.mark.parametrize("typed", ["/nick alice", "/nick ａｌｉｃｅ"])
def test_nick_to_same_name_tells_nobody(trio, typed):
    """Renaming to exactly one's own name is refused and tells nobody."""
    alice, bob, carol = trio
    alice.send(typed)
    assert alice.take() == ["!! You are already called alice. Please choose another name."]
    assert bob.take() == [] and carol.take() == []


@pytest.mark.parametrize("typed, shown", [("/nick bob", "bob"), ("/nick BOB", "BOB"),
                                          ("/nick ｂｏｂ", "bob")])
def test_nick_taken(trio, typed, shown):
    """/nick to a name in use (any case or width) is refused."""
    alice, bob, carol = trio
    alice.send(typed)
    assert alice.take() == [f"!! The name {shown!r} is taken. Please choose another name."]
    assert bob.take() == []
    assert alice.user.name == "alice"


@pytest.mark.parametrize(
    "typed, error",
    [
        ("/nick bad!", "A name may only contain letters, digits, '_' and '-' (not '!')."),
        ("/nick admin", "The name 'admin' is reserved."),
        ("/nick " + "n" * 25, "That name is 25 characters long; the limit is 24."),
        ("/nick \x1b[31m", "A name cannot be empty."),
    ],
)
def test_nick_invalid(trio, typed, error):
    """/nick to an invalid name says why."""
    alice, bob, carol = trio
    alice.send(typed)
    assert alice.take() == [f"!! {error} Please choose another name."]
    assert alice.user.name == "alice"


@pytest.mark.parametrize("typed", ["/nick", "/nick a b"])
def test_nick_usage(connect, typed):
    """/nick needs exactly one name."""
    alice = connect("alice")
    alice.send(typed)
    assert alice.take() == ["!! Usage: /nick NEWNAME. Type /help nick for more."]


# -- /topic ---------------------------------------------------------------------------------------


def test_topic_none(connect):
    """/topic with no topic set says so and how to set one."""
    alice = connect("alice")
    alice.send("/topic")
    assert alice.take() == ["-- #lobby has no topic. Type /topic TEXT to set one."]


def test_topic_set_and_show(trio):
    """/topic TEXT sets the topic and tells every member; /topic shows it and who set it."""
    alice, bob, carol = trio
    alice.send("/topic Welcome to the lobby")
    for client in (alice, bob, carol):
        assert client.take() == ["-- alice set the topic of #lobby: Welcome to the lobby"]
    bob.send("/topic")
    assert bob.take() == ["-- The topic of #lobby is: Welcome to the lobby (set by alice)"]


def test_topic_clear(trio):
    """/topic - clears the topic and tells every member."""
    alice, bob, carol = trio
    alice.send("/topic something")
    drain(alice, bob, carol)
    bob.send("/topic -")
    for client in (alice, bob, carol):
        assert client.take() == ["-- bob cleared the topic of #lobby"]
    alice.send("/topic")
    assert alice.take() == ["-- #lobby has no topic. Type /topic TEXT to set one."]


def test_topic_too_long(trio, factory):
    """A topic over the limit is refused with its length and the limit; nobody is told."""
    alice, bob, carol = trio
    limit = factory.chat.limits.max_topic_length
    alice.send("/topic " + "t" * (limit + 1))
    assert alice.take() == [
        f"!! That topic is {limit + 1} characters long; the limit is {limit}."]
    assert bob.take() == []
    alice.send("/topic " + "t" * limit)
    assert bob.take() == ["-- alice set the topic of #lobby: " + "t" * limit]


def test_topic_sanitised(trio):
    """Escapes in a topic never reach the members."""
    alice, bob, carol = trio
    alice.send("/topic \x1b[5mblink\x1b[0m \u202ehere")
    assert bob.take() == ["-- alice set the topic of #lobby: blink here"]


def test_topic_in_other_room_reaches_its_members_only(trio):
    """A topic change reaches the room's members (even if not current), nobody else."""
    alice, bob, carol = trio
    alice.send("/join games")
    bob.send("/join games", "/join lobby")
    drain(alice, bob)
    alice.send("/topic poker")
    assert bob.take() == ["-- alice set the topic of #games: poker"]
    assert carol.take() == []


# -- /say -------------------------------------------------------------------------------------


def test_say_literal_slash(trio):
    """/say sends text that starts with a slash as it is."""
    alice, bob, carol = trio
    alice.send("/say /join is how you join")
    assert bob.take() == ["<alice> /join is how you join"]
    assert alice.take() == []


@pytest.mark.parametrize("typed", ["/say", "/say   "])
def test_say_usage(connect, typed):
    """/say without text shows the usage."""
    alice = connect("alice")
    alice.send(typed)
    assert alice.take() == ["!! Usage: /say TEXT. Type /help say for more."]


def test_say_only_controls(trio):
    """/say of control characters only says there is nothing to say."""
    alice, bob, carol = trio
    alice.send("/say \x00\x1b[H")
    assert alice.take() == ["!! There is nothing to say."]
    assert bob.take() == []


# -- /ping -------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed, reply", [("/ping", "PONG"), ("/ping abc", "PONG abc"),
                                          ("/ping  a b ", "PONG a b")])
def test_ping(connect, typed, reply):
    """/ping answers PONG with the token, if any."""
    alice = connect("alice")
    alice.send(typed)
    assert alice.take() == [reply]


# -- /history (the parsing; tests/test_persistence.py shows the lines) ----------------------------

HISTORY_RANGE = ("!! Usage: /history [NAME] [N], where N is a number of lines from 1 to 500. "
                 "Type /help history for more.")


@pytest.mark.parametrize("typed", ["/history \u00b2", "/history \u2460", "/history \u0663",
                                   "/history 1000", "/history 501", "/history 0",
                                   "/history -5", "/history 5 6", "/history bob ten",
                                   "/history bob 0"])
def test_history_number_out_of_range_or_not_a_number(connect, typed):
    """
    /history with anything but 1 to 500 in ASCII digits says the range; digits that
    str.isdigit() accepts but int() refuses (superscript two, circled one) are no
    server error.  A first word that is not a number is a NAME (a private
    conversation), and the N after it is checked the same way.
    """
    alice = connect("alice")
    alice.send(typed)
    assert alice.take() == [HISTORY_RANGE]


def test_history_in_range_without_a_database(connect):
    """/history 500 is a valid request: here it is refused only because nothing is kept."""
    alice = connect("alice")
    alice.send("/history 500")
    assert alice.take() == ["!! Room history is not available: this server keeps no "
                            "accounts or history."]


def test_parse_count_accepts_ascii_digits_only():
    """parse_count: ASCII digits only, so that int() never raises on what it accepts."""
    assert commands.parse_count("42") == 42
    assert commands.parse_count("007") == 7
    for text in ["", "\u00b2", "\u2460", "\u0663", "4\u00b2", "-1", "+1", " 1", "1.0", "\uff11"]:
        assert commands.parse_count(text) is None, text


# -- /quit ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["quit", "logout", "exit"])
def test_quit_with_message(trio, factory, command):
    """/quit MESSAGE (aliases /logout, /exit) says goodbye; the rooms see the message."""
    alice, bob, carol = trio
    bob.send(f"/{command}   see you later  ")
    assert bob.take() == ["-- Goodbye, bob!"]
    assert bob.closed
    assert alice.take() == ["<- bob quit (see you later)"]
    assert carol.take() == ["<- bob quit (see you later)"]
    assert "bob" not in factory.chat.users


def test_quit_without_message(trio):
    """/quit alone shows a bare quit line."""
    alice, bob, carol = trio
    bob.send("/quit")
    assert alice.take() == ["<- bob quit"]


def test_quit_message_sanitised(trio):
    """A quit message cannot carry escapes."""
    alice, bob, carol = trio
    bob.send("/quit bye\x1b[2J\x1b[H")
    assert alice.take() == ["<- bob quit (bye)"]


def test_quit_then_connection_lost_tells_once(trio, factory):
    """The connection closing after /quit tells nobody a second time."""
    alice, bob, carol = trio
    bob.send("/quit bye")
    alice.take()
    bob.protocol.connectionLost(None)
    assert alice.take() == []
    assert bob.protocol not in factory.chat.clients


def test_quit_removes_empty_rooms(trio, factory):
    """Rooms left empty by a quit disappear."""
    alice, bob, carol = trio
    bob.send("/join solo", "/quit")
    assert "solo" not in factory.chat.rooms


# -- unknown commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, error",
    [
        ("/joni x", "!! Unknown command /joni. Did you mean /join? Type /help for the list of commands."),
        ("/hlep", "!! Unknown command /hlep. Did you mean /help? Type /help for the list of commands."),
        ("/quti", "!! Unknown command /quti. Did you mean /quit? Type /help for the list of commands."),
        ("/xyzzy", "!! Unknown command /xyzzy. Type /help for the list of commands."),
        ("//", "!! Unknown command //. Type /help for the list of commands."),
        ("/" + "q" * 30, "!! Unknown command /" + "q" * 20 + ".... Type /help for the list of commands."),
    ],
)
def test_unknown_command(trio, typed, error):
    """An unknown command is refused with a near suggestion when there is one; nothing is said."""
    alice, bob, carol = trio
    alice.send(typed)
    assert alice.take() == [error]
    assert bob.take() == []


def test_unknown_command_echo_is_sanitised(connect):
    """The refusal of an unknown command never echoes escape sequences."""
    alice = connect("alice")
    alice.send("/\x1b[2Jwipe", "/help \x1b[2Jwipe")
    assert b"\x1b" not in alice.output()


@pytest.mark.parametrize("typed", ["/", "/ ", "/   hello"])
def test_bare_slash(trio, typed):
    """A slash with no command explains how to say something starting with a slash."""
    alice, bob, carol = trio
    alice.send(typed)
    assert alice.take() == [
        "!! Type a command after the slash, such as /help. To say something that "
        "starts with a slash, type /say TEXT."
    ]
    assert bob.take() == []


def test_private_attributes_are_not_commands(connect):
    """Only do_* methods are commands: /__class__ and /_usage are unknown."""
    alice = connect("alice")
    alice.send("/__class__", "/_usage")
    lines = alice.take()
    assert len(lines) == 2
    assert all(line.startswith("!! Unknown command /") for line in lines)


def test_history_with_a_name_without_a_database(connect):
    """/history NAME asks for a private conversation: refused here because nothing is kept."""
    alice = connect("alice")
    alice.send("/history bob 20")
    assert alice.take() == ["!! The history of private conversations is not available: this "
                            "server keeps no accounts or history."]
