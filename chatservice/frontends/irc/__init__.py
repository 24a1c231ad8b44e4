"""
The IRC front end: real IRC clients (irssi, WeeChat, HexChat, ...) in the
same rooms as telnet users.  C{factory.py} builds an L{IRCProtocol} per
connection over the shared L{chatservice.core.chat.Chat}.
"""
