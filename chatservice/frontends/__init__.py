"""
The ways people reach the chat: each front end turns its protocol into calls
on the core and renders the core's events (the line protocol in L{line}).
"""
