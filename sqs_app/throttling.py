"""DRF's anonymous and per-user throttles, counted in the shared cache, failing open.

The counts live in CACHES["default"]: in production a cache every process
shares (CACHE_URL=redis://..., or dbcache://...), so that a limit holds
across pods and processes instead of multiplying with them. The client's
address is DRF's, with REST_FRAMEWORK["NUM_PROXIES"] set from the
environment: 0 (the default) trusts no X-Forwarded-For at all, N trusts the
N proxies in front of Wipsie and takes the address the outermost one saw.

If the cache itself is unreachable, a request is let through (and the
failure logged) rather than every request becoming a 500: a throttle guards
capacity, it is not what keeps Wipsie up.
"""

import logging

from rest_framework import throttling

logger = logging.getLogger(__name__)


class _FailOpen:
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - any cache backend's connection error
            logger.warning("Throttle cache unavailable (%s); request let through", type(exc).__name__)
            return True


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    pass
