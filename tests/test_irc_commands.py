"""
The IRC commands of a registered client, each with its replies and its
error numerics, over a L{StringTransport} on a fake clock.
"""

import pytest

from ircclient import IRCFakeClient, irc_factory


@pytest.fixture
def irc(factory):
    """Return C{connect(nick, *channels)}: a registered IRC client in C{channels}."""
    ircf = irc_factory(factory)

    def connect(nick: str, *channels: str) -> IRCFakeClient:
        client = IRCFakeClient(ircf)
        client.register(nick)
        if channels:
            client.send("JOIN " + ",".join(channels))
        client.take()
        return client

    return connect


def test_join_creates_rooms_and_answers_join_topic_and_names(irc, connect, factory):
    """JOIN #a,#b enters both (creating #games): JOIN echo, 332/333 when there is a topic, 353/366."""
    bob = connect("bob")
    bob.send("/topic cards tonight")
    alice = irc("alice")
    alice.send("JOIN #lobby,#games")
    assert alice.take() == [
        ":alice!~alice@testchat JOIN :#lobby",
        ":testchat 332 alice #lobby :cards tonight",
        ":testchat 333 alice #lobby bob :0",
        ":testchat 353 alice = #lobby :bob alice",
        ":testchat 366 alice #lobby :End of /NAMES list",
        ":alice!~alice@testchat JOIN :#games",
        ":testchat 353 alice = #games :@alice",
        ":testchat 366 alice #games :End of /NAMES list",
    ]
    assert set(alice.user.rooms) == {"lobby", "games"}
    alice.send("JOIN #games")
    assert alice.take() == []  # already there


def test_join_refusals(irc, factory):
    """A name without # is 403; one breaking the room rules is 476 (bad channel mask); past --max-rooms-per-user is 405; JOIN with no channel is 461."""
    factory.chat.limits.max_rooms_per_user = 1
    alice = irc("alice", "#one")
    alice.send("JOIN games", "JOIN #bad!name", "JOIN #two", "JOIN")
    lines = alice.take()
    assert alice.numerics(lines) == ["403", "476", "405", "461"]
    assert lines[1].startswith(":testchat 476 alice #bad!name :Bad Channel Mask: A room name "
                               "may only contain")


def test_join_0_parts_everything(irc, connect):
    """JOIN 0 leaves every channel; telnet members see the leave."""
    bob = connect("bob")
    alice = irc("alice", "#lobby", "#games")
    bob.take()
    alice.send("JOIN 0")
    assert alice.take() == [":alice!~alice@testchat PART :#lobby",
                            ":alice!~alice@testchat PART :#games"]
    assert alice.user.rooms == {}
    assert bob.take() == ["<- alice left #lobby"]


def test_part(irc, connect):
    """PART with a reason; PART of an unknown channel is 403, of one you are not in 442."""
    bob = connect("bob")
    alice = irc("alice", "#lobby")
    bob.take()
    alice.send("PART #lobby :gotta go", "PART #nowhere", "PART #lobby")
    lines = alice.take()
    assert lines[0] == ":alice!~alice@testchat PART #lobby :gotta go"
    assert alice.numerics(lines[1:]) == ["403", "442"]
    assert bob.take() == ["<- alice left #lobby (gotta go)"]


def test_privmsg_errors(irc, connect):
    """PRIVMSG: 411 without a target, 412 without text, 401 for an unknown nick or channel, 404 for a channel you are not in; a NOTICE never gets an error (RFC 1459 4.4.2)."""
    connect("bob")
    alice = irc("alice")
    alice.send("PRIVMSG", "PRIVMSG #lobby", "PRIVMSG nobody :hi", "PRIVMSG #nowhere :hi",
               "PRIVMSG #lobby :hi", "NOTICE #lobby :hi", "NOTICE nobody :hi", "NOTICE",
               "NOTICE #nowhere :hi")
    assert alice.numerics() == ["411", "412", "401", "401", "404"]


def test_notice_is_a_notice_on_irc_and_a_line_on_telnet(irc, connect):
    """A NOTICE to a channel or a nick reaches IRC users as NOTICE and telnet users as an ordinary line."""
    bob = connect("bob")
    alice = irc("alice", "#lobby")
    carol = irc("carol", "#lobby")
    bob.take(), alice.take()
    alice.send("NOTICE #lobby :heads up", "NOTICE carol :psst")
    assert bob.take() == ["<alice> heads up"]
    assert carol.take() == [":alice!~alice@testchat NOTICE #lobby :heads up",
                            ":alice!~alice@testchat NOTICE carol :psst"]


def test_privmsg_to_several_targets(irc, connect):
    """A comma list reaches every target, channels and nicks alike."""
    bob = connect("bob")
    carol = connect("carol")
    alice = irc("alice", "#lobby")
    bob.take(), carol.take()
    alice.send("PRIVMSG #lobby,carol :hello all")
    assert bob.take() == ["<alice> hello all"]
    assert carol.take() == ["<alice> hello all", "[private] <alice> hello all"]


def test_ctcp_other_than_action_is_not_relayed(irc, connect):
    """A CTCP VERSION is not relayed (a NOTICE says so); CTCP ACTION is /me."""
    bob = connect("bob")
    alice = irc("alice", "#lobby")
    bob.take()
    alice.send("PRIVMSG bob :\x01VERSION\x01", "PRIVMSG #lobby :\x01ACTION waves\x01")
    assert alice.take() == [":testchat NOTICE alice :CTCP VERSION is not relayed by this "
                            "server."]
    assert bob.take() == ["* alice waves"]


def test_topic(irc, connect):
    """TOPIC shows 331 or 332/333, sets the topic for every member, and answers 403 and 442."""
    bob = connect("bob")
    alice = irc("alice", "#lobby")
    carol = irc("carol")
    bob.take()
    alice.send("TOPIC #lobby")
    assert alice.take() == [":testchat 331 alice #lobby :No topic is set"]
    alice.send("TOPIC #lobby :games at 8")
    assert alice.take() == [":alice!~alice@testchat TOPIC #lobby :games at 8"]
    assert bob.take() == ["-- alice set the topic of #lobby: games at 8"]
    carol.send("TOPIC #lobby", "TOPIC #lobby :mine", "TOPIC #nowhere")
    lines = carol.take()
    assert lines[:2] == [":testchat 332 carol #lobby :games at 8",
                         ":testchat 333 carol #lobby alice :0"]
    assert carol.numerics(lines[2:]) == ["442", "403"]


def test_topic_too_long_is_explained(irc, factory):
    """A topic over TOPICLEN is not set, and a NOTICE says why."""
    alice = irc("alice", "#lobby")
    alice.send("TOPIC #lobby :" + "x" * 301)
    [line] = alice.take()
    assert line.startswith(":testchat NOTICE alice :The topic of #lobby was not changed")
    assert factory.chat.rooms["lobby"].topic == ""


def test_names_who_whois_list(irc, connect):
    """NAMES, WHO, WHOIS and LIST answer with 353/366, 352/315, 311/319/312/318 and 321/322/323."""
    bob = connect("bob")
    bob.send("/join games")
    alice = irc("alice", "#lobby")
    alice.send("NAMES #lobby,#nowhere")
    assert alice.take() == [":testchat 353 alice = #lobby :bob alice",
                            ":testchat 366 alice #lobby,#nowhere :End of /NAMES list"]
    alice.send("JOIN #hideout", "MODE #hideout +s")
    alice.take()
    alice.send("NAMES #hideout")  # secret: RFC 2812's @
    assert alice.take() == [":testchat 353 alice @ #hideout :@alice",
                            ":testchat 366 alice #hideout :End of /NAMES list"]
    carol = irc("carol")
    carol.send("NAMES #hideout", "NAMES")  # a stranger sees nothing of a secret channel
    assert carol.take() == [":testchat 366 carol #hideout :End of /NAMES list",
                            ":testchat 366 carol * :End of /NAMES list"]
    alice.send("PART #hideout")
    alice.take()
    alice.send("WHO #lobby")
    assert alice.take() == [
        ":testchat 352 alice #lobby ~bob testchat testchat bob H :0 bob",
        ":testchat 352 alice #lobby ~alice testchat testchat alice H :0 Real alice",
        ":testchat 315 alice #lobby :End of /WHO list"]
    alice.send("WHO bob", "WHO nobody")
    assert alice.numerics() == ["352", "315", "315"]
    alice.send("WHOIS bob")
    assert alice.take() == [":testchat 311 alice bob ~bob testchat * :bob",
                            ":testchat 319 alice bob :#lobby @#games",
                            ":testchat 312 alice bob testchat :chatservice",
                            ":testchat 318 alice bob :End of /WHOIS list"]
    alice.send("WHOIS nobody")
    assert alice.numerics() == ["401", "318"]
    alice.send("LIST")
    assert alice.take() == [":testchat 321 alice Channel :Users  Name",
                            ":testchat 322 alice #lobby 2 :",
                            ":testchat 322 alice #games 1 :",
                            ":testchat 323 alice :End of /LIST"]
    alice.send("LIST #games")
    assert alice.numerics() == ["321", "322", "323"]


def test_who_mask(irc, connect):
    """WHO with a * mask (or 0) lists the matching users one shares a room with, oneself included (all are +i); 315 repeats the mask as given."""
    connect("bob")
    carol = irc("carol")
    alice = irc("alice", "#games")
    dave = irc("dave", "#games")
    alice.take()
    assert carol and dave
    alice.send("WHO *")
    assert alice.take() == [
        ":testchat 352 alice #games ~alice testchat testchat alice H@ :0 Real alice",
        ":testchat 352 alice #games ~dave testchat testchat dave H :0 Real dave",
        ":testchat 315 alice * :End of /WHO list"]
    alice.send("WHO DA*", "WHO 0", "WHO c*")
    assert alice.numerics() == ["352", "315", "352", "352", "315", "315"]
    alice.send("WHO carol")  # an exact nick still finds a stranger
    assert alice.numerics() == ["352", "315"]


def test_mode(irc, connect):
    """MODE #room is 324 +n and 329; changes are 482 (nobody is an operator of the default room) or 472; MODE me is 221 +i (always on: +i is a no-op, +w is 501), another user's 502; bans are an empty list."""
    connect("bob")
    alice = irc("alice", "#lobby")
    alice.send("MODE #lobby", "MODE #lobby +n", "MODE #lobby +x", "MODE #lobby b",
               "MODE #nowhere", "MODE alice", "MODE alice +i", "MODE alice +w", "MODE bob",
               "MODE nobody")
    lines = alice.take()
    assert lines[0] == ":testchat 324 alice #lobby :+n"
    assert ":testchat 221 alice :+i" in lines
    assert alice.numerics(lines) == ["324", "329", "482", "472", "368", "403", "221", "501",
                                     "502", "401"]


def test_away(irc):
    """AWAY sets 306 and unsets 305; a PRIVMSG to an away user answers 301; WHOIS shows it; WHO flags G."""
    alice = irc("alice", "#lobby")
    bob = irc("bob", "#lobby")
    alice.take()
    alice.send("AWAY :lunch")
    assert alice.numerics() == ["306"]
    bob.send("PRIVMSG alice :hi", "WHO alice")
    lines = bob.take()
    assert lines[0] == ":testchat 301 bob alice :lunch"
    assert " alice G :" in lines[1]
    bob.send("WHOIS alice")
    assert "301" in bob.numerics()
    alice.take()
    alice.send("AWAY")
    assert alice.numerics() == ["305"]
    bob.send("PRIVMSG alice :back?")
    assert bob.take() == []


def test_ison_and_userhost(irc, connect):
    """ISON lists the online nicks asked for; USERHOST gives nick=+user@host."""
    connect("bob")
    alice = irc("alice")
    alice.send("ISON bob nobody ALICE", "USERHOST bob nobody")
    assert alice.take() == [":testchat 303 alice :bob alice",
                            ":testchat 302 alice :bob=+~bob@testchat"]


def test_nick_change(irc, connect, factory):
    """NICK renames: the client gets its NICK line, telnet neighbours are told; taken 433, invalid 432, too fast 438."""
    bob = connect("bob")
    alice = irc("alice", "#lobby")
    bob.take()
    alice.send("NICK alicia")
    assert alice.take() == [":alice!~alice@testchat NICK :alicia"]
    assert bob.take() == ["-- alice is now known as alicia"]
    alice.send("NICK BOB", "NICK no/way")
    assert alice.numerics() == ["433", "432"]
    alice.send("NICK a1", "NICK a2", "NICK a3")
    lines = alice.take()
    # the user part stays the USER name given at registration
    assert lines[:2] == [":alicia!~alice@testchat NICK :a1", ":a1!~alice@testchat NICK :a2"]
    assert alice.numerics(lines[2:]) == ["438"]


def test_motd_lusers_ping(irc):
    """MOTD and LUSERS can be asked again; PING is answered with PONG and its token."""
    alice = irc("alice")
    alice.send("MOTD", "LUSERS", "PING :tok")
    lines = alice.take()
    assert alice.numerics(lines) == ["375", "372", "376", "251", "254", "255", "265", "266"]
    assert lines[-1] == ":testchat PONG testchat :tok"


def test_lusers_counts_everyone_invisible_with_local_and_global_users(irc, connect):
    """LUSERS: 251 counts every user as invisible (+i is always on); Modern's 265 and 266 follow 255."""
    connect("bob")
    alice = irc("alice")
    alice.send("LUSERS")
    assert alice.take() == [
        ":testchat 251 alice :There are 0 users and 2 invisible on 1 server",
        ":testchat 254 alice 1 :channels formed",  # the lobby
        ":testchat 255 alice :I have 2 clients and 0 servers",
        ":testchat 265 alice :Current local users 2",
        ":testchat 266 alice :Current global users 2"]


def test_unknown_command_is_421_never_a_disconnect(irc):
    """Unknown commands, numerics and junk are 421; the connection stays."""
    alice = irc("alice")
    alice.send("FROBNICATE", "123", ":prefixonly", "KNOCK #x")
    assert alice.numerics() == ["421", "421", "421", "421"]
    assert not alice.closed


def test_a_line_that_is_not_utf8_is_warned_then_acted_on(irc):
    """UTF8ONLY: bytes that are not UTF-8 get WARN <command> INVALID_UTF8, then the line goes through with U+FFFD."""
    alice, bob = irc("alice"), irc("bob")
    alice.feed(b"PRIVMSG bob :hi\xaa\r\n")
    assert alice.take() == [
        ":testchat WARN PRIVMSG INVALID_UTF8 :Your line was not valid UTF-8: its bad bytes "
        "were replaced"]
    assert bob.take() == [":alice!~alice@testchat PRIVMSG bob :hi\ufffd"]
    alice.feed("PRIVMSG bob :caf\u00e9 \ufffd\r\n".encode())  # U+FFFD itself is fine
    assert alice.take() == []


def test_masks_carry_the_user_name_given_with_user(connect, factory):
    """The user part of an IRC user's mask is the USER name (with ~, cleaned of mask characters, at most USERLEN), in their lines, WHO, WHOIS and USERHOST; a telnet user's is their name."""
    connect("bob")
    ircf = irc_factory(factory)
    alice = IRCFakeClient(ircf)
    alice.send("NICK alice", "USER a!l@i*ce_with_a_very_long_name 0 * :Alice")
    alice.send("JOIN #lobby")
    watcher = IRCFakeClient(ircf)
    watcher.register("watcher")
    watcher.send("JOIN #lobby")
    watcher.take()
    alice.send("PRIVMSG #lobby :hi")
    assert watcher.take() == [":alice!~alice_with_a_ver@testchat PRIVMSG #lobby :hi"]
    watcher.send("WHOIS alice", "USERHOST alice bob")
    lines = watcher.take()
    assert ":testchat 311 watcher alice ~alice_with_a_ver testchat * :Alice" in lines
    assert ":testchat 302 watcher :alice=+~alice_with_a_ver@testchat bob=+~bob@testchat" in lines
    watcher.send("WHO alice")
    assert watcher.take()[0].split()[4] == "~alice_with_a_ver"
