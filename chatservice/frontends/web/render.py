"""
How the web front end shows things: every chat event as one JSON object
(see C{WEBSOCKET.md}), encoded once per front end; a batch of events is one
WebSocket frame holding a JSON list.
"""

import json
from typing import Any, Dict, List

from zope.interface import implementer

from ...core import events
from ...core.interfaces import IRenderer
from .frames import frame_payload, text_frame

#: The version of the JSON protocol, sent in the C{hello} message.
PROTOCOL_VERSION = 1

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_message(message: Dict[str, Any]) -> bytes:
    """C{message} as the UTF-8 JSON text of one WebSocket frame."""
    return _dumps(message).encode("utf-8")


def event_message(event) -> Dict[str, Any]:
    """The JSON object that shows chat event C{event} (room or personal)."""
    kind = type(event)
    if kind is events.Said or kind is events.Acted:
        return {"type": "said" if kind is events.Said else "acted", "room": event.room,
                "sender": event.sender, "text": event.text, "when": event.when}
    if kind is events.Joined:
        return {"type": "joined", "room": event.room, "user": event.user, "when": event.when}
    if kind is events.Left:
        return {"type": "left", "room": event.room, "user": event.user,
                "reason": event.reason, "when": event.when}
    if kind is events.Presence:
        return {"type": "presence", "room": event.room, "joined": list(event.joined),
                "left": list(event.left), "renamed": [list(pair) for pair in event.renamed]}
    if kind is events.TopicChanged:
        return {"type": "topic", "room": event.room, "user": event.user,
                "topic": event.topic, "when": event.when}
    if kind is events.RoomClosed:
        return {"type": "closed", "room": event.room, "reason": event.reason}
    if kind is events.Announcement:
        return {"type": "announcement", "room": event.room, "text": event.text}
    if kind is events.ModeChanged:
        return {"type": "mode", "room": event.room, "user": event.user,
                "changes": [list(change) for change in event.changes], "when": event.when}
    if kind is events.Kicked:
        return {"type": "kicked", "room": event.room, "user": event.user,
                "target": event.target, "reason": event.reason, "when": event.when}
    if kind is events.Invited:
        return {"type": "invited", "room": event.room, "user": event.user,
                "target": event.target, "when": event.when}
    if kind is events.Private:
        return {"type": "private", "sender": event.sender, "recipient": event.recipient,
                "text": event.text, "action": event.action, "when": event.when}
    if kind is events.Renamed:
        return {"type": "renamed", "old": event.old_name, "new": event.new_name,
                "when": event.when}
    if kind is events.Quit:
        return {"type": "quit", "user": event.user, "reason": event.reason,
                "when": event.when}
    raise TypeError(f"not a chat event: {event!r}")


def history_line(stored) -> Dict[str, Any]:
    """A stored room line (a L{HistoryLine}) as a JSON object."""
    return {"id": stored.id, "when": stored.when, "kind": stored.kind,
            "sender": stored.sender, "text": stored.text}


def private_line(stored) -> Dict[str, Any]:
    """A stored line of a private conversation (a L{PrivateLine}) as a JSON object."""
    return {"id": stored.id, "when": stored.when, "kind": stored.kind,
            "sender": stored.sender, "recipient": stored.recipient, "text": stored.text}


@implementer(IRenderer)
class WebRenderer:
    """Room events as JSON objects; the same for every member (no focus)."""

    distinguishes_focus = False
    #: the page shows its user's own lines as the room's other members get them
    echoes_own_lines = True

    @staticmethod
    def encode(event, focused: bool) -> bytes:
        """Return room event C{event} as one WebSocket frame holding its JSON object."""
        return text_frame(encode_message(event_message(event)))

    @staticmethod
    def combine(frames: List[bytes]) -> bytes:
        """Several events in one frame: a JSON list of their objects."""
        return text_frame(b"[" + b",".join(frame_payload(frame) for frame in frames) + b"]")


#: The one renderer every web connection shares.
WEB_RENDERER = WebRenderer()
