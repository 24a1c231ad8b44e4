"""
The interfaces between the chat's shared state and its front ends.
"""

from zope.interface import Attribute, Interface


class IChatClient(Interface):
    """
    One connected user's front end: the line protocol, and later IRC or a
    web page.  The factory calls these methods; the client decides what the
    user sees.
    """

    write = Attribute(
        """
        A callable taking C{bytes}, stored once per client (the same object
        every time it is read): rooms keep it in their delivery plans and
        call it for every broadcast.
        """
    )

    def encode_room_event(event, focused):
        """
        Return the bytes that show room event C{event} to a member of its
        room.  C{focused} is true when the room is that member's current
        room.  Must depend on nothing but its arguments: rooms call it once
        per broadcast for every client of the same class.
        """

    def deliver(event):
        """
        Show the user an event addressed to them alone (a private message,
        a neighbour's rename or quit, an announcement).
        """

    def disconnect(reason):
        """
        Tell the user C{reason} and close their connection; the factory has
        already forgotten them or will when the connection is lost.
        """
