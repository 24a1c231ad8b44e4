"""
The web front end's HTTP side: the page and its files (from the package's
C{static} directory, read once when the site is built) and the WebSocket
at C{/ws}, with the security headers on every response.
"""

import hashlib
import os
from typing import Dict, Tuple

from autobahn.twisted.resource import WebSocketResource
from twisted.web import http
from twisted.web.resource import NoResource, Resource
from twisted.web.server import Site

from .factory import WebChatFactory

#: Where the page's files are, inside the package.
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

#: Content types by file extension (nothing else is served).
CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".svg": b"image/svg+xml",
}

#: No inline script or style, nothing from elsewhere; WebSockets to this server only.
CONTENT_SECURITY_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

#: Headers of every response of the web port.
SECURITY_HEADERS = (
    (b"Content-Security-Policy", CONTENT_SECURITY_POLICY),
    (b"X-Content-Type-Options", b"nosniff"),
    (b"Referrer-Policy", b"no-referrer"),
    (b"X-Frame-Options", b"DENY"),
)

#: The files may change with an upgrade: browsers revalidate (ETag) every time.
CACHE_CONTROL = b"no-cache"


def load_static(directory: str = STATIC_DIR) -> Dict[str, Tuple[bytes, bytes]]:
    """The page's files as C{name -> (content type, content)}."""
    files = {}
    for name in sorted(os.listdir(directory)):
        kind = CONTENT_TYPES.get(os.path.splitext(name)[1])
        if kind is not None:
            with open(os.path.join(directory, name), "rb") as f:
                files[name] = (kind, f.read())
    return files


def secure(request) -> None:
    """Put the security headers on C{request}'s response."""
    for name, value in SECURITY_HEADERS:
        request.setHeader(name, value)


class StaticFile(Resource):
    """One file of the page, served from memory with its type and an ETag."""

    isLeaf = True

    def __init__(self, content_type: bytes, body: bytes) -> None:
        super().__init__()
        self.content_type = content_type
        self.body = body
        self.etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'

    def render_GET(self, request) -> bytes:
        """The file, or 304 when the browser has this version."""
        secure(request)
        request.setHeader(b"Content-Type", self.content_type)
        request.setHeader(b"Cache-Control", CACHE_CONTROL)
        if request.setETag(self.etag) == http.CACHED:
            return b""
        return self.body

    render_HEAD = render_GET


class SecureNotFound(NoResource):
    """404, with the security headers."""

    def render(self, request) -> bytes:
        """The 404 page."""
        secure(request)
        return super().render(request)


class WebRoot(Resource):
    """C{/}: the page; C{/static/NAME}: its files; C{/ws}: the WebSocket."""

    def __init__(self, factory: WebChatFactory, files: Dict[str, Tuple[bytes, bytes]]) -> None:
        super().__init__()
        self.files = {name.encode(): StaticFile(*spec) for name, spec in files.items()}
        self.putChild(b"", self.files[b"index.html"])
        self.putChild(b"ws", WebSocketResource(factory))

    def getChild(self, path: bytes, request) -> Resource:
        """C{/static/NAME} for the files; anything else is not found."""
        if path == b"static" and len(request.postpath) == 1:
            found = self.files.get(request.postpath[0])
            if found is not None:
                request.postpath.pop()
                request.prepath.append(b"")
                return found
        return SecureNotFound()


class WebSite(Site):
    """The web port's site; requests are not logged (the chat logs its own lines)."""

    def log(self, request) -> None:
        """Log nothing per request."""


def make_site(factory: WebChatFactory) -> WebSite:
    """The site for C{--web-port}: page, files and WebSocket."""
    return WebSite(WebRoot(factory, load_static()))
