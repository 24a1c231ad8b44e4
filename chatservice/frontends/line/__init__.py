"""
The line protocol people use from telnet, netcat or a script: framing, the
telnet filter, the slash commands, rendering, and L{ChatFactory}.
"""
