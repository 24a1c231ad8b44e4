"""A first end-to-end pass over the fake transport: log in, talk, quit."""


def test_two_users_talk_in_the_lobby(connect):
    """A line said by one user reaches the other as <name> text, not the sender."""
    alice = connect("alice")
    bob = connect("bob")
    assert alice.take() == ["-> bob joined #lobby"]
    bob.send("hello")
    assert alice.take() == ["<bob> hello"]
    assert bob.take() == []


def test_quit_cleans_up(connect, factory):
    """/quit says goodbye, tells the room and forgets the user."""
    alice = connect("alice")
    bob = connect("bob")
    alice.take()
    bob.send("/quit see you")
    assert bob.take() == ["-- Goodbye, bob!"]
    assert bob.closed
    assert alice.take() == ["<- bob quit (see you)"]
    assert "bob" not in factory.chat.users
    assert list(factory.chat.default_room.members) == ["alice"]
