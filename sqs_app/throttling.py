"""DRF's anonymous and per-user throttles, counted in O(1) in the shared cache, failing open.

The counts live in CACHES["default"]: in production a cache every process
shares (CACHE_URL=redis://..., or dbcache://...), so that a limit holds
across pods and processes instead of multiplying with them. The client's
address is DRF's, with REST_FRAMEWORK["NUM_PROXIES"] set from the
environment: 0 (the default) trusts no X-Forwarded-For at all, N trusts the
N proxies in front of Wipsie and takes the address the outermost one saw.

DRF's own throttle keeps a list of every request's time in the last period
and reads and writes the whole list on every request: at 6,000/minute that is
up to 6,000 timestamps pickled, and shipped to Redis and back, per request,
and measured here as the largest single cost of a send at high rates. These
count instead: the period is cut into `SLICES` slices, each with one counter
per client, incremented atomically (Redis INCR); a request reads the last
`SLICES` counters in one call (Redis MGET) and is refused when they add up to
the limit. So a request counts against the limit for between 9/10 of the
period and all of it, and Retry-After is never longer than the period, as
with DRF's.

If the cache itself is unreachable, a request is let through (and the
failure logged) rather than every request becoming a 500: a throttle guards
capacity, it is not what keeps Wipsie up.
"""

import logging

from rest_framework import throttling

logger = logging.getLogger(__name__)


SLICES = 10


class _SlicedCount:
    """`allow_request` and `wait` for DRF's SimpleRateThrottle: same rates and keys, a fixed cost."""

    def allow_request(self, request, view):
        try:
            return self._allow(request, view)
        except Exception as exc:  # noqa: BLE001 - any cache backend's connection error
            logger.warning("Throttle cache unavailable (%s); request let through", type(exc).__name__)
            return True

    def _allow(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        slice_seconds = self.duration / SLICES
        now = self.timer()
        current = int(now // slice_seconds)
        keys = [f"{self.key}:{n}" for n in range(current - SLICES + 1, current + 1)]  # oldest first
        counts = self.cache.get_many(keys)
        self._counts = [counts.get(key, 0) for key in keys]
        self._until_next_slice = (current + 1) * slice_seconds - now
        if sum(self._counts) >= self.num_requests:
            return False
        self._count(keys[-1], exists=bool(self._counts[-1]), timeout=self.duration + slice_seconds)
        return True

    def _count(self, key: str, *, exists: bool, timeout: float) -> None:
        """One more request in the current slice's counter, which lives `timeout` seconds.

        The counter read a moment ago is incremented at once (one INCR, the common
        case); only a slice's first request creates it (ADD), and when another
        request created it meanwhile, increments it after all.
        """
        if exists:
            try:
                self.cache.incr(key)
                return
            except ValueError:  # expired since it was read
                pass
        if not self.cache.add(key, 1, timeout=timeout):
            try:
                self.cache.incr(key)
            except ValueError:  # expired between add and incr: start it again
                self.cache.add(key, 1, timeout=timeout)

    def wait(self):
        """Seconds until enough of the oldest slices have left the window for one more request."""
        slice_seconds = self.duration / SLICES
        over = sum(self._counts) - self.num_requests + 1
        for dropped, count in enumerate(self._counts):
            over -= count
            if over <= 0:
                return self._until_next_slice + dropped * slice_seconds
        return self.duration


class AnonRateThrottle(_SlicedCount, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_SlicedCount, throttling.UserRateThrottle):
    pass
