"""Coalescing bursts of change notifications into one callback, on a thread of its own.

Why it exists: the cluster changes in storms (a rollout rewrites EndpointSlices for every pod it replaces, a
certificate rotation touches several Secrets), and each notification downstream costs a recompile. The registry and
the credentials directory both announce "something changed, generation N" through one of these, after the changes
have been quiet for a moment, or at the latest `max_delay` after the first one (a storm that never ends must not
starve the proxies).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

ChangeCallback = Callable[[int], None]


class Debouncer:
    """`mark()` per change; the callback gets the latest generation once the burst settles. Callbacks may be slow:
    they run on the debouncer's thread, never on the thread that called `mark()`."""

    def __init__(self, quiet: float, max_delay: float, callback: ChangeCallback | None, *,
                 name: str = "registry-notify") -> None:
        self._quiet, self._max_delay, self._callback = quiet, max_delay, callback
        self._cond = threading.Condition()
        self._first: float | None = None  # when the oldest unannounced change happened
        self._last = 0.0
        self._generation = 0  # bumped per change
        self._announced = 0
        self._stopping = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def mark(self) -> None:
        with self._cond:
            now = time.monotonic()
            self._generation += 1
            self._first = self._first if self._first is not None else now
            self._last = now
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    @property
    def announced(self) -> int:
        with self._cond:
            return self._announced

    def wait_announced(self, after: int, timeout: float) -> int:
        """Block until a generation above `after` was announced, or the timeout; returns the latest announced."""
        with self._cond:
            self._cond.wait_for(lambda: self._announced > after or self._stopping, timeout=timeout)
            return self._announced

    def _run(self) -> None:
        while (generation := self._next()) is not None:
            if self._callback is not None:
                try:
                    self._callback(generation)
                except Exception:  # a broken subscriber must not stop the notifications
                    log.exception("change callback failed")
            with self._cond:
                self._announced = generation
                self._cond.notify_all()

    def _next(self) -> int | None:
        """Wait until a change has been quiet for `quiet` (or pending for `max_delay`); None when stopping."""
        with self._cond:
            while not self._stopping:
                if self._first is None:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                due = min(self._last + self._quiet, self._first + self._max_delay)
                if now >= due:
                    self._first = None
                    return self._generation
                self._cond.wait(timeout=due - now)
            return None
