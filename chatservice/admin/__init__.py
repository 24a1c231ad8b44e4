"""
Admin access: an SSH manhole into the live server.

With C{--admin-port}, operators log in with OpenSSH's C{ssh} and get an
interactive Python shell (Twisted's colored manhole, with line editing and
history) inside the running chat server.  The shell's namespace holds the
live objects (C{chat}, C{users}, C{rooms}, C{reactor}) and a few helpers
(C{who()}, C{room(name)}, C{stats()}, C{kick(name, reason)},
C{announce(text, room=None)}, C{close_room(name)}; C{helpers()} lists them).

Safe by default:
  - admin access is off unless C{--admin-port} is given, and then needs
    credentials: C{--admin-keys} (an OpenSSH authorized_keys file; those
    keys log in as C{admin}) and/or C{--admin-passwd} (C{user:hash} lines
    of salted scrypt hashes, see L{chatservice.passwords}).  There is no
    default login;
  - the port binds to loopback unless an interface is named, and naming a
    non-loopback one needs C{--admin-allow-remote} (and is logged as a
    warning);
  - the SSH host key is generated on first start into the data directory
    (mode 0600, directory 0700) and reused, so its fingerprint is stable;
  - refused logins are logged with the user name and the peer, never the
    password.

Everything typed in the shell runs on the reactor thread, like the chat
itself: a blocking call (C{time.sleep}, a slow query, C{input()}) freezes
the chat for everyone until it returns.

Modules: L{options} (the command-line options and their checks),
L{credentials} (authorized keys and password files as cred checkers),
L{hostkey} (the generated host key), L{ssh} (login step, transport,
session, realm), L{namespace} (the shell's helpers), L{service} (the
listening service and L{make_admin_service}).
"""

from .options import AdminOptions
from .service import AdminService, make_admin_service

__all__ = ["AdminOptions", "AdminService", "make_admin_service"]
