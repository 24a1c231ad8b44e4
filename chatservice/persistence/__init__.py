"""
What the chat keeps across restarts: the SQLite store and its threads, each
room's recent lines in memory, and registered names (accounts).
"""

from typing import Callable, Optional, Tuple

from ..core.limits import Limits
from .accounts import Accounts
from .recent import RecentHistory
from .store import ChatStore


def remember(store: ChatStore, clock, replay_lines: int,
             run_blocking: Optional[Callable] = None,
             limits: Optional[Limits] = None) -> Tuple[Accounts, RecentHistory]:
    """
    Return what the chat keeps over C{store}: its L{Accounts} (password
    checks via C{run_blocking}, a thread by default, bounded by C{limits})
    and its L{RecentHistory}, sized for C{replay_lines} but never more than
    the store keeps per room.
    """
    accounts = Accounts(store, clock, limits=limits) if run_blocking is None else Accounts(
        store, clock, run_blocking, limits)
    kept = store.history_limit
    recent = RecentHistory(store, min(replay_lines, kept) if kept else replay_lines)
    return accounts, recent
