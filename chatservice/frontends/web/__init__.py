"""
The web front end: a page served at C{/} and a WebSocket at C{/ws} (see
C{WEBSOCKET.md} for the JSON protocol), peer of the line and IRC front ends.
"""
