"""
The interfaces between the chat's core and its front ends.

The core calls an L{IChatClient} for each connected person and an
L{IRenderer} for each kind of front end; it never looks further into a
front end than these say.
"""

from zope.interface import Attribute, Interface


class IRenderer(Interface):
    """
    How one front end shows room events: one renderer object per front end
    (not per connection), shared by all its clients, so that a broadcast
    encodes each event once per front end.
    """

    distinguishes_focus = Attribute(
        """
        Whether L{encode} depends on C{focused}: if not, the members of a
        room are not split by it, and each event is encoded once.
        """
    )

    echoes_own_lines = Attribute(
        """
        Whether the sender of a line (a said line or an action) is shown it
        as the other members are: a page has no terminal that echoes what
        was typed, a telnet user's terminal does.  Other events a member
        causes are never sent back to them by a broadcast.
        """
    )

    def encode(event, focused):
        """
        Return the payload (C{bytes} for a byte stream) that shows room
        event C{event} to a member of its room.  C{focused} is true when
        the room is that member's current room.  Must depend on nothing but
        its arguments: the same payload goes to every member of a group.
        """

    def combine(payloads):
        """
        Return one payload that shows the payloads of several events, in
        order (a batch: one write per member instead of one per event).
        """


class IChatClient(Interface):
    """
    One connected person's front end: the line protocol, and later IRC or
    a web page.  The core calls these; the client decides what the person
    sees.
    """

    write = Attribute(
        """
        A callable taking one payload of L{renderer}'s, stored once per
        client (the same object every time it is read): rooms keep it in
        their delivery plans and call it for every broadcast.
        """
    )

    renderer = Attribute("The L{IRenderer} of this client's front end.")

    user = Attribute(
        "The L{chatservice.core.user.User} logged in through this client, or L{None}.")

    peer = Attribute("Where the client connects from, as C{host:port}, for logs.")

    def deliver(event):
        """
        Show the person an event addressed to them alone (a private
        message, a neighbour's rename or quit, an announcement).
        """

    def disconnect(reason):
        """
        Tell the person C{reason} and close their connection; the core has
        already forgotten them or will when the connection is lost.
        """

    def abort():
        """Drop the connection at once, without a word (a client that does not read)."""
