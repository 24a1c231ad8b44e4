"""
Reading a chat database file directly, the way an operator's C{sqlite3}
would, for the tests that check what the store wrote.
"""

import sqlite3


def query(path, sql, *args):
    """Run one statement on the database file C{path} with a fresh connection; return all rows."""
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()
