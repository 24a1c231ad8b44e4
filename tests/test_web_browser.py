"""
The web page in a real headless Chromium (Debian's, driven by Playwright)
against a real C{twistd chat --web-port} subprocess, beside a netcat-like
line client.

PyPy cannot install Playwright (greenlet does not build there): only there
are these tests skipped.  On CPython a missing Playwright or Chromium is a
failure.
"""

import os
import platform
import signal

import pytest

if platform.python_implementation() == "PyPy":
    pytest.skip("Playwright needs greenlet, which does not build on PyPy",
                allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from twistd_process import EXIT_TIMEOUT, log_in  # noqa: E402
from webtwistd import start_web  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
#: Without the background-networking flags Chromium keeps trying the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
#: Where the screenshot of a chat in progress goes (not committed).
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "test-artifacts")
XSS = "<img src=x onerror=alert(1)>"
TIMEOUT = 10_000  # ms


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_web(tmp_path_factory.mktemp("browser"), "--flood-burst", "100",
                        "--password-retry-delay", "0.1")
    yield running
    running.stop()


@pytest.fixture
def page_for(browser, server):
    """Open a page at the server (in its own context) and fail on any dialog or script error."""
    contexts = []

    def open_page(port=None, **options):
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.dialogs = []
        page.errors = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.goto(f"http://127.0.0.1:{port or server.web}/")
        return page

    yield open_page
    for context in contexts:
        for page in context.pages:
            assert page.dialogs == [] and page.errors == []
        context.close()


def enter(page, name: str) -> None:
    page.fill("#login-name", name)
    page.click("#login-button")
    expect(page.locator("#chat-view")).to_be_visible()


def say(page, text: str) -> None:
    page.fill("#say", text)
    page.press("#say", "Enter")


def test_two_browser_users_and_a_netcat_user_chat_in_one_room(page_for, server):
    """Lines go page to page, page to netcat and netcat to both pages; a screenshot is kept."""
    ann, ben = page_for(), page_for()
    enter(ann, "ann")
    enter(ben, "ben")
    with server.connect() as cat:
        log_in(cat, "cat")
        say(ann, "hello from ann")
        expect(ben.locator("#log")).to_contain_text("hello from ann")
        cat.expect("<ann> hello from ann")
        cat.say("hi both, from netcat")
        for page in (ann, ben):
            expect(page.locator("#log")).to_contain_text("hi both, from netcat")
        say(ben, "/me waves")
        expect(ann.locator("#log")).to_contain_text("* ben")
        cat.expect("* ben waves")
        expect(ann.locator("#members")).to_contain_text("cat")
        expect(ann.locator("#log .day")).to_have_count(1)  # a day separator
        os.makedirs(ARTIFACTS, exist_ok=True)
        ann.screenshot(path=os.path.join(ARTIFACTS, "web-chat.png"))
        # a room not in view counts its unread lines
        say(ann, "/join side")
        expect(ann.locator("#conv-title")).to_have_text("#side")
        say(ben, "are you there?")
        lobby = ann.locator("#rooms button", has_text="#lobby")
        expect(lobby.locator(".unread")).to_have_text("1")
        lobby.click()
        expect(ann.locator("#log")).to_contain_text("are you there?")
        expect(lobby.locator(".unread")).to_have_count(0)
        # a member's name opens a private conversation; netcat sees it as private
        ben.locator("#members button", has_text="ann").click()
        expect(ben.locator("#conv-title")).to_have_text("Private: ann")
        say(ben, "just between us")
        private = ann.locator("#privates button", has_text="ben")
        expect(private.locator(".unread")).to_have_text("1")
        private.click()
        expect(ann.locator("#log")).to_contain_text("<ben> just between us")
        cat.say("/msg ben psst from netcat")
        ben.locator("#privates button", has_text="cat").click()
        expect(ben.locator("#log")).to_contain_text("<cat> psst from netcat")


#: A WebSocket opened by the page's own browser: the extensions it agreed
#: on, and the text of a long line it said, as the server sent it back.
PAGE_WEBSOCKET = """async (text) => {
    const ws = new WebSocket(`ws://${location.host}/ws`);
    const said = new Promise((resolve, reject) => {
        ws.onerror = () => reject(new Error("WebSocket error"));
        ws.onmessage = (event) => {
            for (const m of [].concat(JSON.parse(event.data))) {
                if (m.type === "state") ws.send(JSON.stringify({type: "input", text}));
                if (m.type === "said") resolve(m.text);
            }
        };
    });
    await new Promise((resolve) => { ws.onopen = resolve; });
    ws.send(JSON.stringify({type: "login", name: "zed"}));
    const back = await said;
    ws.close();
    return {extensions: ws.extensions, back};
}"""


def test_the_browser_gets_compressed_frames(page_for):
    """Chromium offers permessage-deflate: agreed, and a long line comes back intact."""
    page = page_for()
    text = "compressible " * 40
    answer = page.evaluate(PAGE_WEBSOCKET, text)
    assert answer["extensions"].startswith("permessage-deflate")
    assert "server_no_context_takeover" in answer["extensions"]
    assert answer["back"] == text.strip()


def test_joining_a_room_shows_its_history(page_for, server):
    """Lines said before the page joined a room are shown when it does."""
    with server.connect() as cat:
        log_in(cat, "dan")
        cat.say("/join past", *[f"old line {i}" for i in range(25)])
        cat.say("said before you came", "and another")
        cat.sync("past")
    page = page_for(viewport={"width": 800, "height": 400})  # 20 lines fill it
    enter(page, "eve")
    page.fill("#join-room", "past")
    page.press("#join-room", "Enter")
    expect(page.locator("#conv-title")).to_have_text("#past")
    expect(page.locator("#log")).to_contain_text("said before you came")
    expect(page.locator("#log")).to_contain_text("and another")
    expect(page.locator("#rooms")).to_contain_text("#past")
    log = page.locator("#log")
    expect(log.locator("li", has_text="old line 7")).to_have_count(1)
    assert log.locator("li", has_text="old line 6").count() == 0  # the last 20 lines so far
    page.locator("#log").evaluate("log => log.scrollTop = 0")  # scrolling up
    expect(log.locator("li", has_text="old line 0")).to_have_count(1)
    assert log.locator("li", has_text="old line 7").count() == 1  # no line twice


def test_markup_in_messages_topics_and_names_stays_text(page_for, server):
    """The XSS payload as message, topic, room name and user name shows literally and runs nothing."""
    page = page_for()
    enter(page, "fay")
    with server.connect() as cat:
        log_in(cat, "gus")
        cat.say(XSS, f"/topic {XSS}")
        cat.sync("xss")
    log = page.locator("#log")
    expect(log).to_contain_text(f"<gus> {XSS}")
    expect(page.locator("#topic")).to_have_text(XSS)
    page.fill("#join-room", XSS)
    page.press("#join-room", "Enter")
    # refused, and the refusal (which quotes the characters) shown as text
    expect(log.locator("li.err", has_text="A room name may only contain")).to_have_count(1)
    say(page, "/nick <svg/onload=alert(1)>")
    expect(log.locator("li.err", has_text="A name may only contain")).to_have_count(1)
    assert page.locator("#log img, #topic img, #rooms img").count() == 0


def test_a_registered_name_asks_for_its_password(page_for, server):
    """A name registered from telnet asks the page for its password, then lets it in."""
    with server.connect() as cat:
        log_in(cat, "hal")
        cat.say("/register opensesame")
        cat.expect(lambda line: "registered to you" in line)
        cat.say("/quit")
    page = page_for()
    page.fill("#login-name", "hal")
    page.click("#login-button")
    expect(page.locator("#login-password")).to_be_visible()
    expect(page.locator("#login-error")).to_contain_text("registered")
    page.fill("#login-password", "not-it")
    page.click("#login-button")
    expect(page.locator("#login-error")).to_contain_text("Wrong password")
    page.fill("#login-password", "opensesame")
    page.click("#login-button")
    expect(page.locator("#chat-view")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("Connected as hal")


def test_the_page_survives_a_server_restart(page_for, tmp_path):
    """The page reconnects by itself, logs in again, and fetches the lines it missed."""
    first = start_web(tmp_path, "--flood-burst", "100")
    port = first.web
    try:
        page = page_for(port)
        enter(page, "ivy")
        say(page, "before the restart")
        expect(page.locator("#log")).to_contain_text("before the restart")
        first.process.send_signal(signal.SIGTERM)
        first.process.wait(EXIT_TIMEOUT)
        expect(page.locator("#status")).to_contain_text("reconnecting")
    finally:
        first.stop()
    second = start_web(tmp_path, "--flood-burst", "100", "--web-port", f"tcp:{port}:interface=127.0.0.1")
    try:
        with second.connect() as cat:
            log_in(cat, "jim")
            cat.say("said while ivy was away")
            cat.sync("away")
            expect(page.locator("#status")).to_contain_text("Connected as ivy", timeout=20_000)
            expect(page.locator("#log")).to_contain_text("said while ivy was away")
            assert page.locator("#log li", has_text="before the restart").count() == 1
            say(page, "back again")
            cat.expect("<ivy> back again")
    finally:
        second.stop()
