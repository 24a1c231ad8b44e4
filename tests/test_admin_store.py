"""The admin shell's helpers for accounts and history, over a real store."""

import pytest
import pytest_twisted
from conftest import FakeClient, make_factory
from twisted.internet import defer

from chatservice.admin.namespace import make_namespace
from chatservice.core.limits import Limits
from chatservice.persistence.store import ChatStore


@pytest.fixture
def chat_with_store(tmp_path):
    """A factory on the real reactor with a real store, closed afterwards."""
    from twisted.internet import reactor

    store = ChatStore(str(tmp_path / "chat.db"), reactor)
    loaded = store.open()
    factory = make_factory(clock=reactor, store=store, stored_topics=loaded.topics,
                          limits=Limits(flood_rate=0, login_timeout=0),
                          run_blocking=lambda f, *a: defer.maybeDeferred(f, *a))
    yield factory
    pytest_twisted.blockon(store.close())


@pytest_twisted.inlineCallbacks
def test_accounts_history_and_reset_password(chat_with_store, capsys):
    """accounts() lists registered names, history() finds room lines, and
    reset_password() sets a password that then logs in."""
    factory = chat_with_store
    from twisted.internet import reactor

    alice = FakeClient(factory)
    alice.send("alice", "/register sesame1", "hello from alice", "/me waves")
    yield factory.chat.store.flush()
    namespace = make_namespace(factory.chat, reactor)

    listing = yield namespace["accounts"]("ali")
    assert repr(listing).splitlines()[0] == "1 account"
    assert "alice" in repr(listing) and "(online)" in repr(listing)

    lines = yield namespace["history"]("#lobby", 10)
    text = repr(lines)
    assert text.splitlines()[0] == "2 lines from #lobby"
    assert "say   <alice> hello from alice" in text
    assert "act   <alice> waves" in text
    only = yield namespace["history"]("lobby", 10, text="waves")
    assert repr(only).splitlines()[0] == "1 line from #lobby"

    done = yield namespace["reset_password"]("Alice", "open-sesame")
    assert repr(done) == "Password of Alice reset."
    assert (yield factory.chat.accounts.authenticate("alice", "open-sesame")) == "alice"
    assert (yield factory.chat.accounts.authenticate("alice", "sesame1")) is None


def test_helpers_say_when_there_is_no_store(capsys):
    """Without a database the store helpers say so instead of failing."""
    from twisted.internet import task

    factory = make_factory(clock=task.Clock())
    namespace = make_namespace(factory.chat, None)
    assert namespace["accounts"]() is None
    assert "keeps nothing on disk" in capsys.readouterr().out
    namespace["helpers"]()
    out = capsys.readouterr().out
    for name in ("accounts", "history", "reset_password"):
        assert f"  {name}(" in out
