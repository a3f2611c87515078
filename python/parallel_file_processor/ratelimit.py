"""A run-wide rate limit: a token bucket owned by the dispatcher, so however many threads,
processes or cluster workers run the calls, together they never start more than the rate
allows (with a small burst).

When a call reports that the service is overloaded (:class:`~.errors.RateLimited`, or any
exception with a numeric ``retry_after``, as HTTP clients raise for status 429), the whole run
pauses for that long and the rate is halved; it then climbs back by a tenth of the limit for
every ``rate`` calls that succeed (additive increase, multiplicative decrease, as TCP does).
"""

from __future__ import annotations

import re
import time
from typing import Any

__all__ = ["RateLimit", "parse_rate", "retry_after_of"]

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:/|per)\s*([0-9]*\.?[0-9]*)\s*([a-z]+?)s?\s*$",
                   re.I)


def parse_rate(value: float | int | str) -> float:
    """Calls per second from ``10``, ``2.5``, ``"100/min"``, ``"5000/hour"``, ``"3/2s"``."""
    if isinstance(value, bool):
        raise ValueError("rate_limit must be a number of calls per second or a string such "
                         "as '100/min'")
    if isinstance(value, (int, float)):
        rate = float(value)
    else:
        m = _RATE.match(value)
        unit = _UNITS.get(m.group(3).lower()) if m else None
        if m is None or unit is None:
            raise ValueError(f"rate_limit {value!r}: expected a number of calls per second or "
                             "a string such as '100/min', '5000/hour', '3/2s'")
        per = float(m.group(2)) if m.group(2) else 1.0
        rate = float(m.group(1)) / (per * unit)
    if not rate > 0:
        raise ValueError(f"rate_limit must be above 0, not {value!r}")
    return rate


def retry_after_of(exc: BaseException) -> float | None:
    """The pause a call's exception asks for (``retry_after`` seconds), or None."""
    value: Any = getattr(exc, "retry_after", None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return max(0.0, float(value))


class RateLimit:
    """Tokens for calls: ``take()`` says whether a call may start now, ``delay()`` how long
    until one may. Not thread-safe: the dispatcher alone uses it.

    ``burst`` calls may start at once after a quiet spell (default one), so no one-second
    window sees more than about ``rate`` calls.
    """

    def __init__(self, rate: float, burst: float | None = None, *,
                 clock: Any = time.monotonic) -> None:
        self.limit = rate
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else 1.0)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._paused_until = 0.0
        self._good = 0
        #: calls started, pauses asked for
        self.started = 0
        self.pauses = 0

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay(self) -> float:
        """Seconds until a call may start (0: now)."""
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> bool:
        """Start one call if the limit allows it now."""
        if self.delay() > 0:
            return False
        self._tokens -= 1
        self.started += 1
        return True

    @property
    def waiting(self) -> bool:
        """Whether the run is held back by a pause the service asked for."""
        return self._clock() < self._paused_until

    def pause(self, seconds: float) -> None:
        """The service said "too many requests": stop everyone for ``seconds`` and halve the
        rate."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + seconds)
        self.rate = max(self.limit / 64, self.rate / 2)
        self._tokens = 0.0
        self._stamp = now + seconds
        self._good = 0
        self.pauses += 1

    def succeeded(self, n: int = 1) -> None:
        """Calls went through: the rate climbs back towards the limit."""
        if self.rate >= self.limit:
            return
        self._good += n
        if self._good >= max(1.0, self.rate):
            self._good = 0
            self.rate = min(self.limit, self.rate + self.limit / 10)
