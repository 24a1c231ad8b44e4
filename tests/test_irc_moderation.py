"""
Moderation over IRC (L{chatservice.frontends.irc.moderation}): channel
MODE set and query, ban lists, KICK and INVITE with their numerics, the
join refusals, prefixes in NAMES, WHO and WHOIS, and a mixed room where a
telnet operator and an IRC operator kick each other's users.
"""

import pytest

from ircclient import IRCFakeClient, irc_factory


@pytest.fixture
def irc(factory):
    """Return C{connect(nick, *channels, caps=...)}: a registered IRC client in C{channels}."""
    ircf = irc_factory(factory)

    def connect(nick: str, *channels: str, caps: str = "") -> IRCFakeClient:
        client = IRCFakeClient(ircf)
        before = (f"CAP REQ :{caps}", "CAP END") if caps else ()
        client.register(nick, *before)
        if channels:
            client.send("JOIN " + ",".join(channels))
        client.take()
        return client

    return connect


@pytest.fixture
def games(irc):
    """alice created #games (its operator); bob and carol are in it too."""
    alice = irc("alice", "#games")
    bob, carol = irc("bob", "#games"), irc("carol", "#games")
    for client in (alice, bob, carol):
        client.take()
    return alice, bob, carol


def test_mode_query_shows_modes_and_creation_time(games, factory, clock):
    alice, bob, carol = games
    alice.send("MODE #games +kl sesame 10")
    expected = ":alice!~alice@testchat MODE #games +kl sesame :10"
    assert [alice.take(), bob.take()] == [[expected], [expected]]
    bob.send("MODE #games")
    assert bob.take() == [":testchat 324 bob #games +kln sesame :10",
                          f":testchat 329 bob #games :{int(clock.seconds())}"]


def test_op_voice_and_prefixes(games, irc):
    """+o and +v show as @ and + in NAMES and WHO; multi-prefix shows both."""
    alice, bob, carol = games
    alice.send("MODE #games +ov bob bob")
    assert carol.take() == [":alice!~alice@testchat MODE #games +ov bob :bob"]
    carol.send("NAMES #games", "WHO #games")
    lines = carol.take()
    assert lines[0] == ":testchat 353 carol = #games :@alice @bob carol"
    assert " bob H@ :" in lines[3]
    dave = irc("dave", "#games", caps="multi-prefix")
    dave.send("NAMES #games", "WHOIS bob")
    lines = dave.take()
    assert lines[0] == ":testchat 353 dave = #games :@alice @+bob carol dave"
    assert ":testchat 319 dave bob :@+#games" in lines
    carol.take()
    alice.send("MODE #games -o+b-v bob spam* bob")
    assert carol.take() == [":alice!~alice@testchat MODE #games -o+b-v bob spam* :bob"]


def test_mode_refusals(games):
    """Non-operators get 482; unknown letters 472; bad values 696; absent nicks 441 and 401."""
    alice, bob, carol = games
    bob.send("MODE #games +m", "MODE #games +o bob")
    assert bob.numerics() == ["482", "482"]
    alice.send("MODE #games +x", "MODE #games +l lots", "MODE #games +o nobody",
               "MODE #games +o", "MODE #nowhere +m")
    assert alice.numerics() == ["472", "696", "401", "461", "403"]
    alice.send("MODE #lobby +o bob")  # alice is in no #lobby: not an operator of it
    assert alice.numerics() == ["482"]


def test_invalid_mode_parameter_names_the_mode_and_never_echoes_a_key(games):
    """696 carries the channel, the mode letter and the refused argument, but * for a key (a key is a secret)."""
    alice, _, _ = games
    alice.send("MODE #games +l lots")
    [line] = alice.take()
    assert line.startswith(":testchat 696 alice #games l lots :")
    alice.send(f"MODE #games +k :{'k' * 40}")
    [line] = alice.take()
    assert line.startswith(":testchat 696 alice #games k * :") and "kkkk" not in line


def test_ban_list_and_bans_keep_out(games, irc):
    """+b adds to the list (367/368); a banned nick cannot JOIN (474) nor talk (404)."""
    alice, bob, carol = games
    alice.send("MODE #games +b BOB!*@*", "MODE #games +b")
    assert alice.take()[1:] == [":testchat 367 alice #games :BOB!*@*",
                                ":testchat 368 alice #games :End of channel ban list"]
    bob.send("PRIVMSG #games :hello")
    assert bob.numerics() == ["404"]
    assert carol.take() == [":alice!~alice@testchat MODE #games +b :BOB!*@*"]
    alice.send("KICK #games bob")
    bob.take()
    bob.send("JOIN #games")
    [line] = bob.take()
    assert line.startswith(":testchat 474 bob #games :Cannot join channel (+b): You are banned")


def test_join_refusals_and_keys(games, irc):
    """473 invite-only, 475 key (JOIN #c key works), 471 full."""
    alice, bob, carol = games
    dave = irc("dave")
    alice.send("MODE #games +i")
    dave.send("JOIN #games")
    assert dave.numerics() == ["473"]
    alice.send("MODE #games -i+k sesame")
    dave.send("JOIN #games", "JOIN #games wrong", "JOIN #lobby,#games x,sesame")
    lines = dave.take()
    assert dave.numerics(lines[:2]) == ["475", "475"]
    assert ":dave!~dave@testchat JOIN :#games" in lines
    alice.send("MODE #games -k+l * 4")  # -k takes an argument, as in every IRC server
    erin = irc("erin")
    erin.send("JOIN #games")
    assert erin.numerics() == ["471"]


def test_invite(games, irc):
    """INVITE: 341 to the inviter, INVITE to the invited, who may then join an invite-only channel."""
    alice, bob, carol = games
    dave = irc("dave")
    alice.send("MODE #games +i")
    bob.take()
    bob.send("INVITE dave #games")
    assert bob.numerics() == ["482"]
    alice.take()
    alice.send("INVITE dave #games")
    assert alice.take() == [":testchat 341 alice dave :#games"]
    assert dave.take() == [":alice!~alice@testchat INVITE dave :#games"]
    dave.send("JOIN #games")
    assert ":dave!~dave@testchat JOIN :#games" in dave.take()
    alice.send("INVITE carol #games", "INVITE nobody #games", "INVITE dave #nowhere",
               "INVITE dave")
    assert alice.numerics() == ["443", "401", "403", "461"]
    erin = irc("erin")
    erin.send("INVITE dave #games")
    assert erin.numerics() == ["442"]


def test_kick(games, irc):
    """KICK: everyone, the kicked included, sees it; the kicked stays connected."""
    alice, bob, carol = games
    alice.send("KICK #games bob :too loud")
    line = ":alice!~alice@testchat KICK #games bob :too loud"
    assert [alice.take(), bob.take(), carol.take()] == [[line]] * 3
    assert not bob.closed and "games" not in bob.user.rooms
    carol.send("KICK #games alice")
    assert carol.numerics() == ["482"]
    alice.send("KICK #games bob", "KICK #games nobody", "KICK #nowhere bob", "KICK #games")
    assert alice.numerics() == ["441", "401", "403", "461"]
    bob.send("KICK #games carol")
    assert bob.numerics() == ["442"]


def test_kick_without_comment_gives_the_kickers_nick(games):
    """RFC 2812 3.2.8: with no comment, the default message is the kicker's nick."""
    alice, bob, carol = games
    alice.send("KICK #games bob")
    line = ":alice!~alice@testchat KICK #games bob :alice"
    assert [alice.take(), bob.take(), carol.take()] == [[line]] * 3


def test_moderated_and_topic(games):
    """+m: 404 for the unvoiced; +t: 482 for a non-operator's TOPIC."""
    alice, bob, carol = games
    alice.send("MODE #games +mtv carol")
    bob.take()
    carol.take()
    bob.send("PRIVMSG #games :hi", "TOPIC #games :mine")
    assert bob.numerics() == ["404", "482"]
    carol.send("PRIVMSG #games :hi")
    assert bob.take() == [":carol!~carol@testchat PRIVMSG #games :hi"]


def test_secret_channels_are_not_listed(games, irc):
    alice, bob, carol = games
    alice.send("MODE #games +s")
    dave = irc("dave")
    dave.send("LIST", "LIST #games", "WHOIS alice")
    assert not any("#games" in line for line in dave.take())
    bob.send("LIST #games")
    assert bob.numerics() == ["321", "322", "323"]


def test_mixed_room_kicks(irc, connect, factory):
    """A telnet operator kicks an IRC user, and an IRC operator a telnet user."""
    tom = connect("tom")
    tom.send("/join mixed")
    ivy = irc("ivy", "#mixed")
    ted = connect("ted")
    ted.send("/join mixed")
    tom.take()
    ivy.take()
    ted.take()
    tom.send("/op ivy")
    assert ivy.take() == [":tom!~tom@testchat MODE #mixed +o :ivy"]
    assert ted.take() == ["-- tom made ivy an operator in #mixed"]
    tom.take()
    ivy.send("KICK #mixed ted :off topic")
    assert ted.take()[0] == "<- ted was kicked out of #mixed by ivy (off topic)"
    assert tom.take() == ["<- ted was kicked out of #mixed by ivy (off topic)"]
    assert ivy.take() == [":ivy!~ivy@testchat KICK #mixed ted :off topic"]
    assert not ted.closed
    tom.send("/kick ivy bye")
    assert ivy.take() == [":tom!~tom@testchat KICK #mixed ivy :bye"]
    assert "mixed" not in ivy.user.rooms and not ivy.closed


def test_invite_lists(games, irc):
    """MODE #games I lists the invites waiting (346, 347); INVITE alone lists the channels you are invited to (336, 337)."""
    alice, bob, carol = games
    dave = irc("dave")
    alice.send("MODE #games I")
    assert alice.take() == [":testchat 347 alice #games :End of Channel Invite List"]
    alice.send("INVITE dave #games", "MODE #games +I")
    assert alice.take()[1:] == [":testchat 346 alice #games :dave!*@*",
                                ":testchat 347 alice #games :End of Channel Invite List"]
    dave.take()
    dave.send("INVITE")
    assert dave.take() == [":testchat 336 dave :#games", ":testchat 337 dave :End of /INVITE list"]
    dave.send("JOIN #games", "INVITE")
    lines = dave.take()
    assert lines[-1] == ":testchat 337 dave :End of /INVITE list"
    assert "336" not in dave.numerics(lines)  # the invite was used up
