"""
Rate limits: the token bucket every limit of "so many at once, then so many
a second" is made of, and the two such rules of the chat itself (renames per
user, and the lines a busy room relays).  A front end's flood control
(L{chatservice.frontends.session.FloodControl}) uses the same bucket.
"""

import math

from twisted.internet.interfaces import IReactorTime

from . import errors
from .limits import Limits


class TokenBucket:
    """
    C{burst} tokens, refilled at C{rate} a second on C{clock}: an action
    that takes a token may go ahead, one that finds none may not.

    @ivar tokens: the tokens in the bucket at the last refill.
    """

    def __init__(self, clock: IReactorTime, burst: float, rate: float) -> None:
        self.clock = clock
        self.burst = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self._refilled = clock.seconds()

    def refill(self) -> float:
        """Bring the bucket up to date and return its tokens."""
        now = self.clock.seconds()
        tokens = self.tokens + (now - self._refilled) * self.rate
        self.tokens = tokens if tokens < self.burst else self.burst
        self._refilled = now
        return self.tokens

    def take(self, cost: float = 1.0) -> bool:
        """Take C{cost} tokens if there are that many; return whether there were."""
        if self.refill() >= cost:
            self.tokens -= cost
            return True
        return False

    def take_any(self, cost: float) -> bool:
        """
        Take C{cost} tokens if there are any at all, going below zero if
        need be (a cost bigger than the whole bucket still gets through now
        and then); return whether there were.
        """
        if self.refill() > 0:
            self.tokens -= cost
            return True
        return False

    def seconds_until(self, cost: float = 1.0) -> float:
        """How long until C{cost} tokens are in the bucket (0 if they are now)."""
        missing = cost - self.refill()
        return max(missing, 0.0) / self.rate if self.rate else float("inf")


def charge_rename(user, limits: Limits, clock: IReactorTime) -> None:
    """
    Take a rename from C{user}'s bucket (C{nick_burst} at once, refilled by
    one every C{nick_interval} seconds), or raise L{errors.TooManyRenames}
    saying how long to wait.
    """
    burst, interval = limits.nick_burst, limits.nick_interval
    if not burst or not interval:
        return
    bucket = user.rename_bucket
    if bucket is None:
        bucket = user.rename_bucket = TokenBucket(clock, burst, 1.0 / interval)
    if bucket.take():
        return
    wait = max(1, math.ceil(round(bucket.seconds_until(), 3)))
    raise errors.TooManyRenames(
        f"You are changing your name too often ({burst} times at once, then "
        f"once every {interval:g} seconds). Wait {wait} second"
        f"{'' if wait == 1 else 's'}, then type /nick NEWNAME again.")


def charge_busy_room(room, limits: Limits, clock: IReactorTime) -> None:
    """
    In a busy room, count a line to every member against the room's budget
    of C{busy_room_deliveries} a second, all senders together, or raise
    L{errors.RoomBusy}: a line to 10,000 members costs the server tens of
    milliseconds, so a few lines a second from anyone would otherwise stall
    everyone.
    """
    budget, size = limits.busy_room_deliveries, len(room.members)
    if not budget or not limits.busy_room_size or size <= limits.busy_room_size:
        return
    bucket = room.delivery_bucket
    if bucket is None:
        bucket = room.delivery_bucket = TokenBucket(clock, budget, budget)
    if bucket.take_any(size):  # may go below 0 in a huge room
        return
    per_second = budget / size
    if per_second >= 1:
        lines = round(per_second)
        rate = f"{lines} line{'' if lines == 1 else 's'} a second"
    else:
        rate = f"one line every {size / budget:.2g} seconds"
    raise errors.RoomBusy(
        f"{room.display} is busy: with {size:,} members it takes at most {rate} "
        "from everyone together, and your line was not sent. Send it again in a "
        "moment.")
