"""A one-frame mailbox between the subscription callback and the inference worker.

The subscription callback puts every frame and returns at once; the worker takes the newest.
A frame overwritten before it was taken counts as dropped, so the worker never falls behind the
camera and memory stays at one pending frame whatever the input rate.
"""

import threading
from typing import Generic, Optional, Tuple, TypeVar

T = TypeVar('T')


class FrameSlot(Generic[T]):
    """Thread-safe holder of the newest unprocessed item."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Optional[T] = None
        self._has_item = False
        self._closed = False
        self._received = 0
        self._dropped_total = 0
        self._dropped_pending = 0

    def put(self, item: T) -> None:
        """Store ``item`` as the newest frame, dropping (and counting) an untaken older one."""
        with self._cond:
            if self._has_item:
                self._dropped_total += 1
                self._dropped_pending += 1
            self._item = item
            self._has_item = True
            self._received += 1
            self._cond.notify()

    def take(self, timeout: Optional[float] = None) -> Optional[Tuple[T, int]]:
        """Wait for a frame and return ``(frame, dropped)``; ``None`` on timeout or close.

        ``dropped`` is the number of frames overwritten since the previous successful take.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._has_item or self._closed, timeout):
                return None
            if not self._has_item:
                return None
            item, dropped = self._item, self._dropped_pending
            self._item, self._has_item, self._dropped_pending = None, False, 0
            return item, dropped

    def close(self) -> None:
        """Wake a waiting :meth:`take` (it returns ``None``); a pending frame counts as dropped."""
        with self._cond:
            self._closed = True
            if self._has_item:
                self._dropped_total += 1
            self._item, self._has_item = None, False
            self._cond.notify_all()

    def reopen(self) -> None:
        """Accept frames again after :meth:`close`; the counters are kept."""
        with self._cond:
            self._closed = False

    @property
    def pending(self) -> int:
        """Frames stored and not yet taken: 0 or 1."""
        with self._cond:
            return int(self._has_item)

    @property
    def received(self) -> int:
        """Frames put since construction."""
        with self._cond:
            return self._received

    @property
    def dropped(self) -> int:
        """Frames overwritten before being taken, since construction."""
        with self._cond:
            return self._dropped_total
