"""twistd dropin: makes ``twistd chat`` start the chat service."""

from twisted.application.service import ServiceMaker

chat = ServiceMaker(
    "chatservice",
    "chatservice.tap",
    "A chat server with rooms that people reach with telnet or netcat.",
    "chat",
)
