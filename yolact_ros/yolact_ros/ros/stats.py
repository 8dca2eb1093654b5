"""Statistics for the node's diagnostics: event rates, latency percentiles, frame counters."""

from collections import deque
from dataclasses import dataclass
import threading
import time
from typing import Callable, Deque, Optional, Tuple

import numpy as np


class RateMeter:
    """Events per second over the last ``window_s`` seconds (thread-safe)."""

    def __init__(self, window_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._times: Deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self) -> None:
        """Record one event now."""
        with self._lock:
            now = self._clock()
            self._times.append(now)
            self._trim(now)

    def rate(self) -> float:
        """Return events per second in the window (0 with fewer than two events)."""
        with self._lock:
            self._trim(self._clock())
            if len(self._times) < 2:
                return 0.0
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window_s:
            self._times.popleft()


class LatencyWindow:
    """The last ``size`` latencies in milliseconds, with percentiles (thread-safe)."""

    def __init__(self, size: int = 200) -> None:
        self._values: Deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value_ms: float) -> None:
        """Record one latency; non-finite values (unstamped images) are ignored."""
        if np.isfinite(value_ms):
            with self._lock:
                self._values.append(float(value_ms))

    def percentile(self, q: float) -> Optional[float]:
        """Return the value below which ``q`` percent (0-100) of the window lies; None if empty."""
        with self._lock:
            if not self._values:
                return None
            return float(np.percentile(np.fromiter(self._values, float), q))


@dataclass
class FrameCounters:
    """What happened to the frames since activation, for diagnostics (written by one worker).

    Attributes:
        processed: frames whose outputs were published.
        bad_frames: frames that could not be decoded.
        frame_errors: frames that failed after decoding (inference, building, publishing).
        inference_errors: the part of ``frame_errors`` the model raised.
        unreported_drops: frames dropped since the last published ``instances``.
        last_error: the last frame error, one line.
    """

    processed: int = 0
    bad_frames: int = 0
    frame_errors: int = 0
    inference_errors: int = 0
    unreported_drops: int = 0
    last_error: str = ''

    def status(self, received: int) -> Tuple[str, str]:
        """Return the diagnostics ``(level, message)``: ERROR after any frame error."""
        if self.frame_errors:
            return 'ERROR', f'{self.frame_errors} frames failed; last: {self.last_error}'
        if received == 0:
            return 'WARN', 'no input images'
        return 'OK', 'running'
