"""
The web front end over real TCP: a C{twistd chat --web-port} subprocess,
its page fetched over HTTP, and WebSocket clients (the C{websockets}
package) beside a netcat-like line client.
"""

import json
import http.client

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from twistd_process import log_in
from webtwistd import start_web

TIMEOUT = 5
#: websockets 17 would have connect() used as a context manager; the
#: tests close their clients themselves.
pytestmark = pytest.mark.filterwarnings("ignore:connect\\(\\) must be used:DeprecationWarning")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_web(tmp_path_factory.mktemp("web"), "--web-max-frame", "4096", "--flood-burst", "100",
                        "--password-retry-delay", "0.1")
    yield running
    running.stop()


class Web:
    """One WebSocket client: JSON messages out, messages (lists unpacked) in."""

    def __init__(self, port: int, origin: str = None) -> None:
        origin = origin or f"http://127.0.0.1:{port}"
        self.ws = connect(f"ws://127.0.0.1:{port}/ws", origin=origin, open_timeout=TIMEOUT)
        self.seen = []

    def send(self, **message) -> None:
        self.ws.send(json.dumps(message))

    def expect(self, kind: str, test=lambda m: True) -> dict:
        """The first message of type C{kind} passing C{test} not returned yet."""
        while True:
            for i, m in enumerate(self.seen):
                if m["type"] == kind and test(m):
                    del self.seen[:i + 1]
                    return m
            data = json.loads(self.ws.recv(timeout=TIMEOUT))
            self.seen.extend(data if isinstance(data, list) else [data])

    def login(self, name: str, password: str = None) -> dict:
        self.expect("hello")
        self.send(type="login", name=name, **({"password": password} if password else {}))
        return self.expect("welcome")

    def close(self) -> None:
        self.ws.close()


def get(port: int, path: str, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def test_the_page_and_its_files_have_types_and_safe_headers(server):
    """/ is the page; its files have their types, revalidation and the CSP; others are 404."""
    response, body = get(server.web, "/")
    assert response.status == 200 and b'<script type="module" src="/static/app.js">' in body
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    csp = response.getheader("Content-Security-Policy")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Cache-Control") == "no-cache"
    for path, kind in (("/static/app.js", "text/javascript"), ("/static/view.js", "text/javascript"),
                       ("/static/style.css", "text/css")):
        response, body = get(server.web, path)
        assert response.status == 200 and response.getheader("Content-Type").startswith(kind)
        etag = response.getheader("ETag")
        again, body = get(server.web, path, {"If-None-Match": etag})
        assert again.status == 304 and body == b""
    for path in ("/static/nope.js", "/static/../tap.py", "/index.html/x", "/static/"):
        response, _ = get(server.web, path)
        assert response.status == 404, path
        assert response.getheader("X-Content-Type-Options") == "nosniff"
    # the page loads no script or style from elsewhere
    _, page = get(server.web, "/")
    assert b"http" not in page.replace(b'http-equiv', b'')


def test_web_and_netcat_users_talk_and_message_privately(server):
    """A line from the page reaches netcat and back; private messages cross both ways."""
    alice = Web(server.web)
    alice.login("alice")
    with server.connect() as bob:
        log_in(bob, "bob")
        alice.expect("joined", lambda m: m["user"] == "bob")
        alice.send(type="input", text="hello bob")
        bob.expect("<alice> hello bob")
        bob.say("hi alice")
        assert alice.expect("said", lambda m: m["sender"] == "bob")["text"] == "hi alice"
        alice.send(type="msg", to="bob", text="psst")
        bob.expect("[private] <alice> psst")
        bob.say("/msg alice back")
        assert alice.expect("private", lambda m: m["sender"] == "bob")["text"] == "back"
    alice.close()


def test_joining_a_room_shows_its_history_and_older_pages(server):
    """The last lines on entering; older ones before a time; all from the store."""
    with server.connect() as carol:
        log_in(carol, "carol")
        carol.say("/join history-room")
        for i in range(30):
            carol.say(f"line {i}")
        carol.sync("said")
    dave = Web(server.web)
    dave.login("dave")
    dave.send(type="join", room="history-room")
    replay = dave.expect("history", lambda m: m["room"] == "history-room")
    texts = [line["text"] for line in replay["lines"]]
    assert texts == [f"line {i}" for i in range(10, 30)]  # the last 20 (--replay-lines)
    first = replay["lines"][0]["when"]
    dave.send(type="history", room="history-room", limit=5, before=first, request="older")
    older = dave.expect("history", lambda m: m["request"] == "older")
    assert [line["text"] for line in older["lines"]] == [f"line {i}" for i in range(5, 10)]
    # those came from the database, with their ids: pages before an id reach any age
    oldest = older["lines"][0]["id"]
    assert oldest > 0
    dave.send(type="history", room="history-room", limit=3, before_id=oldest, request="p3")
    page = dave.expect("history", lambda m: m["request"] == "p3")
    assert [line["text"] for line in page["lines"]] == ["line 2", "line 3", "line 4"]
    dave.send(type="history", room="history-room", limit=3, before_id=-1)
    assert "before_id" in dave.expect("error")["text"]
    dave.send(type="history", room="lobby-nope", limit=5)
    assert "no room called #lobby-nope" in dave.expect("error")["text"]
    dave.close()


def test_a_registered_name_asks_for_its_password(server):
    """Register from the page; the next login with that name needs the password."""
    erin = Web(server.web)
    erin.login("erin")
    erin.send(type="register", password="sesame123")
    assert "registered to you" in erin.expect("info", lambda m: "registered" in m["text"])["text"]
    erin.close()
    again = Web(server.web)
    again.expect("hello")
    again.send(type="login", name="erin")
    assert again.expect("password")["name"] == "erin"
    again.send(type="login", name="erin", password="wrong-one")
    assert "Wrong password" in again.expect("error")["text"]
    again.expect("password")
    again.send(type="login", name="erin", password="sesame123")
    welcome = again.expect("welcome")
    assert welcome["name"] == "erin" and welcome["registered"] is True
    again.close()
    assert "sesame123" not in server.log() and "wrong-one" not in server.log()
    # autobahn's debug messages (one per frame) stay out of the log
    assert "#debug]" not in server.log()


def test_another_sites_page_is_refused(server):
    """The handshake from another origin gets 403."""
    with pytest.raises(InvalidStatus) as refused:
        Web(server.web, origin="http://evil.example")
    assert refused.value.response.status_code == 403


def test_an_oversize_message_closes_with_1009(server):
    """Past --web-max-frame the WebSocket is closed as 'message too big'."""
    frank = Web(server.web)
    frank.login("frank")
    frank.send(type="input", text="x" * 5000)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            frank.ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd.code == 1009


def test_bad_json_is_answered_and_the_connection_stays(server):
    """Not JSON: an error message, and the connection goes on."""
    gina = Web(server.web)
    gina.login("gina")
    gina.ws.send("{nope")
    assert "JSON object" in gina.expect("error")["text"]
    gina.send(type="ping", token=7)
    assert gina.expect("pong")["token"] == 7
    gina.close()
