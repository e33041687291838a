"""
Stand-in for the LMS's ``openedx.core.lib.cache_utils``: the ``request_cached`` decorator.

As the platform's: a function's result is kept in edx-django-utils' request cache
(in ``namespace``, or the default one), keyed by the function and its arguments as
text, until the cache is cleared (by the request cache middleware at each web
request, or explicitly outside one). Exceptions are not cached.
"""
import functools

from edx_django_utils.cache import RequestCache


def request_cached(namespace=None):
    """Cache the decorated function's results for the rest of the request."""
    def decorate(function):
        prefix = f"{function.__module__}.{function.__qualname__}"

        @functools.wraps(function)
        def cached(*args, **kwargs):
            cache = RequestCache(namespace)
            key = ".".join([prefix, *map(str, args), *(f"{name}={value}" for name, value in sorted(kwargs.items()))])
            found = cache.get_cached_response(key)
            if found.is_found:
                return found.value
            value = function(*args, **kwargs)
            cache.set(key, value)
            return value
        return cached
    return decorate
