"""
chatservice: a chat server with rooms, built on Twisted, that people reach
with telnet or netcat and operators run with ``twistd -n chat``.
"""

__version__ = "0.1.0"
