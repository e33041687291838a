"""
Per-source rate limits, on DRF's throttling machinery and Django's cache.

Two budgets, so that a flood of forged requests cannot use up a real
sender's budget:

* verified deliveries count against the source's ``THROTTLE_RATE`` (no limit
  when unset);
* requests that fail verification count against
  ``LMS_BRIDGE_REJECTED_THROTTLE_RATE`` per source and client address; past
  it they get 429 without even being recorded, which bounds what a flood
  writes to the database.

The counters live in Django's default cache: in the LMS that is memcached or
Redis, shared by all processes; a per-process cache gives a per-process limit.
"""
from rest_framework.throttling import SimpleRateThrottle

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate):
    """
    Parse ``"<count>/<period>"`` (period ``s``, ``m``, ``h`` or ``d``, or a word starting so).

    Returns:
        tuple[int, int] | None: requests allowed and the period in seconds; None for no limit.

    Raises:
        ValueError: the text is not a rate.
    """
    if rate is None:
        return None
    if not isinstance(rate, str) or "/" not in rate:
        raise ValueError(f"a rate looks like '120/min', not {rate!r}")
    count, _, period = rate.partition("/")
    if not count.strip().isdigit() or int(count) <= 0 or period.strip()[:1] not in PERIODS:
        raise ValueError(f"a rate looks like '120/min', not {rate!r}")
    return int(count), PERIODS[period.strip()[0]]


class SourceRateThrottle(SimpleRateThrottle):
    """A fixed rate for one cache key (a source, or a source and a client address)."""

    def __init__(self, key, rate):  # pylint: disable=super-init-not-called
        # SimpleRateThrottle's own __init__ looks the rate up in DRF's settings
        # by scope; the rate here comes from lms_bridge's source settings.
        self.key = key
        self.rate = rate
        self.num_requests, self.duration = parse_rate(rate)

    def get_cache_key(self, request, view):
        return self.key


def peek_throttle(key, rate):
    """
    Whether ``key`` is over ``rate`` now, without counting a request.

    Used before any work is done for a request that may be refused, so that a
    client already over its refusals budget costs no verification at all.

    Returns:
        int | None: None when under the rate, else the seconds to wait.
    """
    if rate is None:
        return None
    throttle = SourceRateThrottle(f"lms_bridge:throttle:{key}", rate)
    now = throttle.timer()
    history = [moment for moment in throttle.cache.get(throttle.key, []) if moment > now - throttle.duration]
    if len(history) < throttle.num_requests:
        return None
    return max(1, int(throttle.duration - (now - history[-1])))


def check_throttle(key, rate):
    """
    Count one request against ``rate`` under ``key``.

    Returns:
        int | None: None when allowed, else the seconds to wait (for ``Retry-After``).
    """
    if rate is None:
        return None
    throttle = SourceRateThrottle(f"lms_bridge:throttle:{key}", rate)
    if throttle.allow_request(None, None):
        return None
    return max(1, int(throttle.wait() or 1))
