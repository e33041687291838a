"""
The backend registry: which backend handles which course.

``LMS_BRIDGE_BACKENDS`` is a list of ``{"BACKEND", "BASE_URL",
"SELECTOR_REGEX", "OPTIONS"}`` entries; the first entry whose regex matches the
course id (``re.match``, so it is anchored at the start) handles the course.
Backend instances are built once per process and reused, so a backend may keep
connections and tokens; the cache is cleared when the setting changes (tests).
"""
import logging
import re
import threading

from django.core.signals import setting_changed

from .backends.base import BackendConfig, EnrollmentBackend
from .conf import get_setting
from .importing import import_subclass

log = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded = None


class RegistryError(Exception):
    """``LMS_BRIDGE_BACKENDS`` cannot be used (the system checks report why)."""


def import_backend_class(path):
    """
    Import an enrollment backend class from its dotted path.

    Raises:
        ImportError: the path cannot be imported or is not an ``EnrollmentBackend``.
    """
    return import_subclass(path, EnrollmentBackend, "backend")


def config_from_setting(entry):
    """Build a BackendConfig from one settings entry (validated by the system checks)."""
    return BackendConfig(
        backend=entry.get("BACKEND", ""),
        base_url=entry.get("BASE_URL", "") or "",
        selector_regex=entry.get("SELECTOR_REGEX", ".*"),
        options=dict(entry.get("OPTIONS") or {}),
    )


#: course ids whose backend a process remembers (past that, the selectors are matched each time)
KNOWN_COURSES = 10_000


class _Registry:
    """The built backends in settings order, and the backend each course id was matched to."""

    def __init__(self, entries):
        self.entries = entries  # [(compiled selector, backend)]
        self.known = {}

    def match(self, course_id):
        """The first backend whose selector matches ``course_id`` (or None), remembered."""
        backend = next((backend for selector, backend in self.entries if selector.match(course_id)), None)
        if len(self.known) < KNOWN_COURSES:
            self.known[course_id] = backend
        return backend


def _load():
    """Build (once per process) the registry from ``LMS_BRIDGE_BACKENDS``."""
    global _loaded  # pylint: disable=global-statement
    loaded = _loaded
    if loaded is not None:  # built: read without the lock
        return loaded
    with _lock:
        if _loaded is None:
            entries = get_setting("LMS_BRIDGE_BACKENDS")
            if not isinstance(entries, (list, tuple)):
                raise RegistryError("LMS_BRIDGE_BACKENDS must be a list")
            built = []
            for entry in entries:
                try:
                    config = config_from_setting(entry)
                    selector = re.compile(config.selector_regex)
                    backend = import_backend_class(config.backend)(config)
                except (AttributeError, TypeError, re.error, ImportError) as exc:
                    raise RegistryError(f"unusable LMS_BRIDGE_BACKENDS entry: {exc}") from exc
                built.append((selector, backend))
            _loaded = _Registry(built)
        return _loaded


def reset():
    """Forget the built backends; the next call builds them from the settings again."""
    global _loaded  # pylint: disable=global-statement
    with _lock:
        _loaded = None


def _on_setting_changed(setting, **kwargs):
    if setting == "LMS_BRIDGE_BACKENDS":
        reset()


def connect_signals():
    """Clear the registry when ``LMS_BRIDGE_BACKENDS`` changes (``override_settings``)."""
    setting_changed.connect(_on_setting_changed, dispatch_uid="lms_bridge.registry.reset")


def select_backend(course_id):
    """
    Return the backend that handles a course.

    Arguments:
        course_id (CourseKey | str): the course.

    Returns:
        EnrollmentBackend | None: the first backend whose ``SELECTOR_REGEX``
        matches, or None when none does (the course is refused).

    Raises:
        RegistryError: the setting is unusable.
    """
    text = str(course_id)
    return select_backends([text])[text]


def select_backends(course_ids):
    """
    ``select_backend`` for each of ``course_ids`` (text), in one go.

    Returns:
        dict[str, EnrollmentBackend | None]: by course id, each once, in the order given.
    """
    registry = _load()
    known = registry.known
    return {course_id: known[course_id] if course_id in known else registry.match(course_id)
            for course_id in dict.fromkeys(course_ids)}


def get_all_backends():
    """
    Return every configured backend, in settings order.

    Raises:
        RegistryError: the setting is unusable.
    """
    return [backend for _, backend in _load().entries]
