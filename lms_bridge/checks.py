"""
Django system checks: misconfiguration is found when the LMS starts, not at
the first webhook. Registered when the app is ready (``apps.py``), so
``manage.py check`` and every LMS start run them.

A source with any error is also closed at run time (503), whether or not the
checks were looked at.

Ids:
    lms_bridge.E001  LMS_BRIDGE_SOURCES is not a dict of dicts with slug keys.
    lms_bridge.E002  a source names an unknown signature scheme.
    lms_bridge.E003  a source has no usable secret (it is closed: every delivery gets 503).
    lms_bridge.E004  a source's secrets (plain ones: at least 16 bytes), tolerance (1-3600 s), body cap,
                     options, or keys are invalid.
    lms_bridge.E005  a source's COURSES, ACTIONS or FORCE_ENROLLMENT is invalid.
    lms_bridge.E010  LMS_BRIDGE_BACKENDS is not a list of dicts.
    lms_bridge.E011  a backend cannot be imported.
    lms_bridge.E012  a backend's SELECTOR_REGEX is not a valid regular expression.
    lms_bridge.E013  a backend's configuration is invalid (as the backend reports).
    lms_bridge.E014  LMS_BRIDGE_MAX_BODY_BYTES (or another size setting) is not a positive integer.
    lms_bridge.E015  a THROTTLE_RATE or LMS_BRIDGE_REJECTED_THROTTLE_RATE is not a rate such as "120/min".
    lms_bridge.E016  a source's FORMAT, MODE (async needs Celery), MAX_PAIRS or ASYNC_ABOVE_PAIRS is invalid.
    lms_bridge.W001  a hmac-sha256 or lernito secret is shorter than 32 bytes.
    lms_bridge.W002  no backend is configured: every course is refused.
"""
import re

from django.core.checks import Error, Tags, Warning, register  # pylint: disable=redefined-builtin

from .conf import get_setting, validate_source
from .registry import config_from_setting, import_backend_class
from .throttling import parse_rate

MESSAGE_CLASSES = {"E": Error, "W": Warning}


@register(Tags.security)
def check_sources(app_configs=None, **kwargs):  # pylint: disable=unused-argument
    """
    Check ``LMS_BRIDGE_SOURCES``: the same validation that keeps a faulty source closed at run time.
    """
    sources = get_setting("LMS_BRIDGE_SOURCES")
    if not isinstance(sources, dict):
        return [Error("LMS_BRIDGE_SOURCES must be a dict of sources by slug.", id="lms_bridge.E001")]
    messages = []
    for slug, value in sources.items():
        config = validate_source(slug, value)
        for check_id, text in (*config.errors, *config.warnings):
            level = MESSAGE_CLASSES[check_id.split(".")[1][0]]
            hint = "The source answers 503 until this is fixed." if level is Error else None
            messages.append(level(f"LMS_BRIDGE_SOURCES[{slug!r}]: {text}.", hint=hint, id=check_id))
    return messages


@register()
def check_backends(app_configs=None, **kwargs):  # pylint: disable=unused-argument
    """Check ``LMS_BRIDGE_BACKENDS``."""
    entries = get_setting("LMS_BRIDGE_BACKENDS")
    if not isinstance(entries, (list, tuple)) or not all(isinstance(entry, dict) for entry in entries):
        return [Error("LMS_BRIDGE_BACKENDS must be a list of dicts.", id="lms_bridge.E010")]
    if not entries:
        return [Warning("LMS_BRIDGE_BACKENDS is empty: every course will be refused.", id="lms_bridge.W002")]
    errors = []
    for position, entry in enumerate(entries):
        where = f"LMS_BRIDGE_BACKENDS[{position}]"
        config = config_from_setting(entry)
        try:
            backend_class = import_backend_class(config.backend)
        except ImportError as exc:
            errors.append(Error(f"{where}: {exc}.", id="lms_bridge.E011"))
            backend_class = None
        try:
            re.compile(config.selector_regex)
        except (re.error, TypeError) as exc:
            errors.append(Error(f"{where}: SELECTOR_REGEX is not a valid regular expression: {exc}.",
                                id="lms_bridge.E012"))
        if backend_class is not None:
            errors.extend(Error(f"{where}: {problem}.", id="lms_bridge.E013")
                          for problem in backend_class.check_configuration(config))
    return errors


@register()
def check_sizes(app_configs=None, **kwargs):  # pylint: disable=unused-argument
    """Check the size and time settings."""
    errors = []
    for name in ("LMS_BRIDGE_MAX_BODY_BYTES", "LMS_BRIDGE_REJECTED_BODY_BYTES",
                 "LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS", "LMS_BRIDGE_RETRY_AFTER_SECONDS",
                 "LMS_BRIDGE_BATCH_PAIRS", "LMS_BRIDGE_CHUNK_PAIRS", "LMS_BRIDGE_TASK_BACKOFF_SECONDS",
                 "LMS_BRIDGE_TASK_BACKOFF_MAX_SECONDS", "LMS_BRIDGE_SWEEP_AFTER_SECONDS"):
        value = get_setting(name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            errors.append(Error(f"{name} must be a positive integer.", id="lms_bridge.E014"))
    try:
        parse_rate(get_setting("LMS_BRIDGE_REJECTED_THROTTLE_RATE"))
    except ValueError as exc:
        errors.append(Error(f"LMS_BRIDGE_REJECTED_THROTTLE_RATE: {exc}.", id="lms_bridge.E015"))
    return errors
