"""
Settings of lms_bridge, read when used (never at import time).

Open edX imports plugin apps before its settings are final, so every setting
is looked up through ``get_setting`` at the moment it is needed, falling back
to the defaults below.

A webhook source is validated in one place, ``validate_source``: the system
checks report what it finds, and the view keeps a source with any error
*closed* (503) until the operator fixes it, so a bad option is never a 500,
a silent 401 or a silently weaker source.
"""
import importlib.util
import re
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.core.signals import setting_changed

from .actions import ACTIONS, ENROLL, UNENROLL  # noqa: F401  pylint: disable=unused-import
from .signatures import DEFAULT_SCHEME, get_scheme_class

DEFAULTS = {
    # Webhook sources by slug (see SOURCE_KEYS).
    "LMS_BRIDGE_SOURCES": {},
    # Enrollment backends, first SELECTOR_REGEX match wins (like Django's TEMPLATES).
    "LMS_BRIDGE_BACKENDS": [
        {
            "BACKEND": "lms_bridge.backends.openedx.OpenEdxBackend",
            "BASE_URL": "",
            "SELECTOR_REGEX": r".*",
            "OPTIONS": {},
        },
    ],
    # Bodies larger than this are refused with 413 before they are read (a source may set its own).
    "LMS_BRIDGE_MAX_BODY_BYTES": 1024 * 1024,
    # How much of a rejected (unauthenticated) body is kept for the audit.
    "LMS_BRIDGE_REJECTED_BODY_BYTES": 16 * 1024,
    # A delivery "processing" for longer than this is taken to have died and may be claimed again.
    "LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS": 120,
    # Retry-After sent with 503 answers.
    "LMS_BRIDGE_RETRY_AFTER_SECONDS": 60,
    # Budget of requests that fail verification, per source and client address
    # ("<count>/<s|min|hour|day>"; None: no limit). Past it they are not even recorded.
    "LMS_BRIDGE_REJECTED_THROTTLE_RATE": "120/min",
    # Pairs changed per database transaction (each pair has its own savepoint inside it).
    "LMS_BRIDGE_BATCH_PAIRS": 100,
    # Pairs per Celery task: a larger delivery is shared by several tasks (and workers).
    # Small enough that a delivery of 1,000 pairs already keeps 4 workers busy.
    "LMS_BRIDGE_CHUNK_PAIRS": 250,
    # Whether Celery runs lms_bridge's tasks: None finds out (celery installed and a broker configured).
    "LMS_BRIDGE_CELERY": None,
    # Celery queue of lms_bridge's tasks (None: the app's default queue).
    "LMS_BRIDGE_CELERY_QUEUE": None,
    # A task retries a transient failure this many times (exponential backoff with jitter), then gives up.
    "LMS_BRIDGE_TASK_MAX_RETRIES": 8,
    "LMS_BRIDGE_TASK_BACKOFF_SECONDS": 5,
    "LMS_BRIDGE_TASK_BACKOFF_MAX_SECONDS": 600,
    # The sweeper re-enqueues deliveries left "received" for longer than this.
    "LMS_BRIDGE_SWEEP_AFTER_SECONDS": 300,
}

DEFAULT_TOLERANCE_SECONDS = 300
# Keys a source may have; anything else is a typo the operator must hear about.
SOURCE_KEYS = frozenset({
    "SCHEME", "SECRETS", "TOLERANCE_SECONDS", "OPTIONS", "THROTTLE_RATE", "MAX_BODY_BYTES",
    "COURSES", "ACTIONS", "FORCE_ENROLLMENT", "FORMAT", "MODE", "MAX_PAIRS", "ASYNC_ABOVE_PAIRS",
})
MODES = ("sync", "async", "auto")
DEFAULT_ASYNC_ABOVE_PAIRS = 20
MAX_MAX_PAIRS = 1_000_000
SLUG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def celery_configured():
    """
    Whether lms_bridge's tasks can run on Celery: ``LMS_BRIDGE_CELERY`` when set,
    else Celery is installed and a broker is configured (``CELERY_BROKER_URL``,
    as Open edX sets it, or ``BROKER_URL``), or tasks run eagerly.
    """
    if importlib.util.find_spec("celery") is None:
        return False
    explicit = get_setting("LMS_BRIDGE_CELERY")
    if explicit is not None:
        return bool(explicit)
    return bool(getattr(settings, "CELERY_BROKER_URL", None) or getattr(settings, "BROKER_URL", None)
                or getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


def get_setting(name):
    """
    Return the value of an ``LMS_BRIDGE_*`` setting, or its default.

    Raises:
        KeyError: ``name`` is not a setting of this application.
    """
    return getattr(settings, name, DEFAULTS[name])


@dataclass(frozen=True)
class SourceConfig:
    """
    One webhook source, as configured in ``LMS_BRIDGE_SOURCES``.

    Attributes:
        errors (tuple[tuple[str, str]]): (check id, message) of each problem;
            a source with any error is closed.
        warnings (tuple[tuple[str, str]]): (check id, message) of what is
            usable but weak.
    """

    slug: str
    scheme: str = DEFAULT_SCHEME
    secrets: tuple = ()
    tolerance: int = DEFAULT_TOLERANCE_SECONDS
    options: dict = field(default_factory=dict)
    throttle_rate: str | None = None
    max_body_bytes: int | None = None
    courses: re.Pattern | None = None
    actions: frozenset = frozenset(ACTIONS)
    force_enrollment: bool = False
    format: str = "lms-bridge"
    # The class FORMAT names, resolved once when the source is validated (not per request).
    format_class: type | None = field(default=None, compare=False, repr=False)
    mode: str = "sync"
    max_pairs: int = 10_000
    async_above: int = DEFAULT_ASYNC_ABOVE_PAIRS
    errors: tuple = ()
    warnings: tuple = ()

    @property
    def is_open(self):
        """True when the source may accept deliveries (no configuration error)."""
        return not self.errors

    def build_scheme(self):
        """Return the source's signature scheme instance (call only on an open source)."""
        return get_scheme_class(self.scheme)(self.secrets, self.tolerance, self.options)

    def build_format(self):
        """Return the source's payload format instance (call only on an open source)."""
        return self.format_class(max_pairs=self.max_pairs)

    def body_cap(self):
        """The largest body the source takes: its MAX_BODY_BYTES, its scheme's cap, or what its format needs."""
        if self.max_body_bytes:
            return self.max_body_bytes
        cap = get_setting("LMS_BRIDGE_MAX_BODY_BYTES")
        return self.build_format().max_body_bytes(cap) if self.is_open else cap

    def runs_async(self, pairs):
        """Whether a delivery of ``pairs`` pairs goes to Celery (its ``MODE``; ``auto`` without Celery is sync)."""
        if self.mode == "sync":
            return False
        if self.mode == "async":
            return True
        return celery_configured() and pairs > self.async_above

    def allows_course(self, course_id):
        """True when the source's ``COURSES`` scope covers ``course_id`` (``re.match``, like SELECTOR_REGEX)."""
        return self.courses is None or self.courses.match(str(course_id)) is not None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def validate_source(slug, value):  # pylint: disable=too-many-branches,too-many-locals,too-many-statements
    """
    Build a SourceConfig from one entry of ``LMS_BRIDGE_SOURCES``, with every problem found.

    Arguments:
        slug: the key in ``LMS_BRIDGE_SOURCES``.
        value: its value.

    Returns:
        SourceConfig: with ``errors`` and ``warnings`` filled in.
    """
    errors, warnings = [], []
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug) or not isinstance(value, dict):
        errors.append(("lms_bridge.E001",
                       "the key must be a slug (letters, digits, '-' or '_') and the value a dict"))
        return SourceConfig(slug=str(slug), errors=tuple(errors))
    unknown = sorted(str(key) for key in value if key not in SOURCE_KEYS)
    if unknown:
        known = ", ".join(sorted(SOURCE_KEYS))
        errors.append(("lms_bridge.E004", f"unknown key(s) {', '.join(unknown)} (known: {known})"))

    scheme_name = value.get("SCHEME", DEFAULT_SCHEME)
    try:
        scheme_class = get_scheme_class(scheme_name)
    except ImportError as exc:
        errors.append(("lms_bridge.E002", f"{exc} (use standard-webhooks, hmac-sha256 or lernito)"))
        scheme_class = None

    secrets = value.get("SECRETS", ())
    if isinstance(secrets, str):
        # A single string where a list belongs is a common slip; treat it as one secret.
        secrets = (secrets,)
    secrets = tuple(secrets) if isinstance(secrets, (list, tuple)) else ()
    tolerance = value.get("TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS)
    options = value.get("OPTIONS", {})
    if scheme_class is not None:
        errors.extend(("lms_bridge.E004", problem) for problem in scheme_class.check_configuration(
            value.get("SECRETS", ()), tolerance, options,
        ))
        if not scheme_class(secrets, options=options if isinstance(options, dict) else {}).is_open:
            errors.append(("lms_bridge.E003", "no usable secret: the source is closed and answers every delivery "
                                              "with 503 (set SECRETS to a list of secrets, newest first)"))
        warnings.extend(
            ("lms_bridge.W001", f"SECRETS[{position}] is {len(secret.encode('utf-8'))} bytes; "
                                f"use at least {scheme_class.RECOMMENDED_SECRET_BYTES} random bytes")
            for position, secret in enumerate(secrets)
            if isinstance(secret, str) and scheme_class.RECOMMENDED_SECRET_BYTES
            and scheme_class.MIN_SECRET_BYTES <= len(secret.encode("utf-8")) < scheme_class.RECOMMENDED_SECRET_BYTES
        )

    # Imported here: DRF must not be imported when the settings module loads this one.
    from .throttling import parse_rate  # pylint: disable=import-outside-toplevel

    throttle_rate = value.get("THROTTLE_RATE")
    try:
        parse_rate(throttle_rate)
    except ValueError as exc:
        errors.append(("lms_bridge.E015", f"THROTTLE_RATE: {exc}"))

    max_body_bytes = value.get("MAX_BODY_BYTES")
    if max_body_bytes is not None and (not _is_int(max_body_bytes) or max_body_bytes <= 0):
        errors.append(("lms_bridge.E004", "MAX_BODY_BYTES must be a positive integer (bytes)"))
        max_body_bytes = None
    if max_body_bytes is None and scheme_class is not None:
        max_body_bytes = scheme_class.DEFAULT_MAX_BODY_BYTES

    courses = value.get("COURSES")
    pattern = None
    if courses is not None:
        try:
            pattern = re.compile(courses)
        except (re.error, TypeError) as exc:
            errors.append(("lms_bridge.E005", f"COURSES must be a regular expression: {exc}"))
    actions = value.get("ACTIONS", ACTIONS)
    if isinstance(actions, str):
        actions = (actions,)
    if not isinstance(actions, (list, tuple, set, frozenset)) or not actions or not set(actions) <= set(ACTIONS):
        errors.append(("lms_bridge.E005", f"ACTIONS must be a non-empty list of {' and '.join(ACTIONS)}"))
        actions = ()
    force = value.get("FORCE_ENROLLMENT", False)
    if not isinstance(force, bool):
        errors.append(("lms_bridge.E005", "FORCE_ENROLLMENT must be True or False"))
        force = False

    from .formats import DEFAULT_FORMAT, get_format_class  # pylint: disable=import-outside-toplevel

    format_name = value.get("FORMAT", DEFAULT_FORMAT)
    try:
        format_class = get_format_class(format_name)
    except ImportError as exc:
        errors.append(("lms_bridge.E016", f"FORMAT: {exc} (built-in: lms-bridge, bulk)"))
        format_class = None
    mode = value.get("MODE", format_class.default_mode if format_class else "sync")
    if mode not in MODES:
        errors.append(("lms_bridge.E016", f"MODE must be one of {', '.join(MODES)}"))
        mode = "sync"
    elif mode == "async":
        if not celery_configured():
            errors.append(("lms_bridge.E016", "MODE is async but Celery is not configured (no broker; "
                                              "install lms-bridge[celery] and set CELERY_BROKER_URL)"))
    max_pairs = value.get("MAX_PAIRS", 10_000)
    if not _is_int(max_pairs) or not 1 <= max_pairs <= MAX_MAX_PAIRS:
        errors.append(("lms_bridge.E016", f"MAX_PAIRS must be an integer from 1 to {MAX_MAX_PAIRS}"))
        max_pairs = 10_000
    async_above = value.get("ASYNC_ABOVE_PAIRS", DEFAULT_ASYNC_ABOVE_PAIRS)
    if not _is_int(async_above) or async_above < 0:
        errors.append(("lms_bridge.E016", "ASYNC_ABOVE_PAIRS must be a non-negative integer"))
        async_above = DEFAULT_ASYNC_ABOVE_PAIRS

    return SourceConfig(
        slug=slug,
        format=format_name if format_class else DEFAULT_FORMAT,
        format_class=format_class or get_format_class(DEFAULT_FORMAT),
        mode=mode,
        max_pairs=max_pairs,
        async_above=async_above,
        scheme=scheme_name,
        secrets=secrets,
        tolerance=tolerance if _is_int(tolerance) else DEFAULT_TOLERANCE_SECONDS,
        options=options if isinstance(options, dict) else {},
        throttle_rate=throttle_rate,
        max_body_bytes=max_body_bytes,
        courses=pattern,
        actions=frozenset(actions),
        force_enrollment=force,
        errors=tuple(errors),
        warnings=tuple(warnings),
    )


_cache_lock = threading.Lock()
_cache = {}


def _on_setting_changed(setting, **kwargs):
    if setting == "LMS_BRIDGE_SOURCES":
        with _cache_lock:
            _cache.clear()


setting_changed.connect(_on_setting_changed, dispatch_uid="lms_bridge.conf.sources")


def get_source(slug):
    """
    Return the validated configuration of the source ``slug``, or None when there is no such source.

    Validated once per process (settings do not change at run time; tests'
    ``override_settings`` clear the cache).
    """
    sources = get_setting("LMS_BRIDGE_SOURCES")
    if not isinstance(sources, dict) or slug not in sources:
        return None
    key = (id(sources), slug)
    with _cache_lock:
        config = _cache.get(key)
    if config is None:
        config = validate_source(slug, sources[slug])
        with _cache_lock:
            _cache[key] = config
    return config
