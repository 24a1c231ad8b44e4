"""
What the chat keeps across restarts: the SQLite store and its threads, each
room's recent lines in memory, and registered names (accounts).
"""
