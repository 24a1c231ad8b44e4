"""
Indexes that let a listing cost what it shows, not what the server holds:
names in order (with a prefix search), and rooms by number of members.

They are kept up to date as rooms and users come and go, at a cost of a
binary search and a list insertion each time, so that C{/rooms} and C{/who}
on a server of thousands of rooms or users touch only the hundred entries
they show instead of sorting them all on every call.
"""

from bisect import bisect_left, insort
from typing import Dict, List, Tuple


class SortedKeys:
    """
    Distinct strings kept in sorted order.  Adding or removing one is a
    binary search plus a list insertion or deletion (a memory move, which
    is fast even for tens of thousands of keys); reading the first keys, or
    the keys that start with a prefix, costs only what is read.
    """

    def __init__(self) -> None:
        self._keys: List[str] = []

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: str) -> bool:
        keys = self._keys
        index = bisect_left(keys, key)
        return index < len(keys) and keys[index] == key

    def add(self, key: str) -> None:
        """Add C{key}, if it is not there already."""
        keys = self._keys
        index = bisect_left(keys, key)
        if index == len(keys) or keys[index] != key:
            keys.insert(index, key)

    def discard(self, key: str) -> None:
        """Remove C{key}, if it is there."""
        keys = self._keys
        index = bisect_left(keys, key)
        if index < len(keys) and keys[index] == key:
            del keys[index]

    def first(self, count: int) -> List[str]:
        """Return the first C{count} keys, in order."""
        return self._keys[:count]

    def _range(self, prefix: str) -> Tuple[int, int]:
        keys = self._keys
        if not prefix:
            return 0, len(keys)
        low = bisect_left(keys, prefix)
        last = ord(prefix[-1])
        if last == 0x10FFFF:  # no character sorts after it: scan for the end
            high = low
            while high < len(keys) and keys[high].startswith(prefix):
                high += 1
            return low, high
        # Every key that starts with the prefix sorts before this one.
        return low, bisect_left(keys, prefix[:-1] + chr(last + 1), low)

    def count_starting_with(self, prefix: str) -> int:
        """Return how many keys start with C{prefix} (two binary searches)."""
        low, high = self._range(prefix)
        return high - low

    def starting_with(self, prefix: str, count: int) -> List[str]:
        """Return the first C{count} keys that start with C{prefix}, in order."""
        low, high = self._range(prefix)
        return self._keys[low:min(high, low + count)]


class RoomIndex:
    """
    Every room, by name key and by number of members, so that the largest
    rooms (and, among rooms of one size, the first names) are found without
    looking at the others.

    The rooms tell the index when their membership changes
    (L{chatservice.room.Room.add} and C{remove} call L{resized}); the
    factory adds and discards rooms as they are created and closed.

    @ivar names: the keys of every room, in order.
    """

    def __init__(self) -> None:
        self.names = SortedKeys()
        # key -> (room, the member count it is filed under)
        self._filed: Dict[str, tuple] = {}
        self._by_size: Dict[int, SortedKeys] = {}
        self._sizes: List[int] = []  # the sizes of _by_size, in order

    def __len__(self) -> int:
        return len(self._filed)

    def __contains__(self, room) -> bool:
        filed = self._filed.get(room.key)
        return filed is not None and filed[0] is room

    def get(self, key: str):
        """Return the room filed under C{key}, or L{None}."""
        filed = self._filed.get(key)
        return filed[0] if filed is not None else None

    def add(self, room) -> None:
        """File C{room} (replacing any other room under the same key)."""
        self.discard(self.get(room.key))
        size = len(room.members)
        self._filed[room.key] = (room, size)
        self.names.add(room.key)
        self._file(room.key, size)

    def discard(self, room) -> None:
        """Forget C{room}, if it is filed."""
        if room is None or room not in self:
            return
        _, size = self._filed.pop(room.key)
        self.names.discard(room.key)
        self._unfile(room.key, size)

    def resized(self, room) -> None:
        """Re-file C{room} after its membership changed."""
        filed = self._filed.get(room.key)
        if filed is None or filed[0] is not room:
            return
        size = len(room.members)
        if size == filed[1]:
            return
        self._unfile(room.key, filed[1])
        self._filed[room.key] = (room, size)
        self._file(room.key, size)

    def _file(self, key: str, size: int) -> None:
        bucket = self._by_size.get(size)
        if bucket is None:
            bucket = self._by_size[size] = SortedKeys()
            insort(self._sizes, size)
        bucket.add(key)

    def _unfile(self, key: str, size: int) -> None:
        bucket = self._by_size[size]
        bucket.discard(key)
        if not len(bucket):
            del self._by_size[size]
            del self._sizes[bisect_left(self._sizes, size)]

    def largest(self, count: int) -> list:
        """
        Return up to C{count} rooms, the largest first and rooms of the same
        size by name: the work is proportional to C{count} (and to the number
        of different sizes passed over, a few hundred at most).
        """
        found: list = []
        sizes = self._sizes
        for position in range(len(sizes) - 1, -1, -1):
            bucket = self._by_size[sizes[position]]
            for key in bucket.first(count - len(found)):
                found.append(self._filed[key][0])
            if len(found) >= count:
                break
        return found

    def starting_with(self, prefix: str, count: int) -> list:
        """Return up to C{count} rooms whose keys start with C{prefix}, by name."""
        return [self._filed[key][0] for key in self.names.starting_with(prefix, count)]
