"""
Django system checks: misconfiguration is found when the LMS starts, not at
the first webhook.

Ids:
    lms_bridge.E001  LMS_BRIDGE_SOURCES is not a dict of dicts with slug keys.
    lms_bridge.E002  a source names an unknown signature scheme.
    lms_bridge.E003  a source has no usable secret (it is closed: every delivery gets 503).
    lms_bridge.E004  a source's secrets, tolerance or options are invalid.
    lms_bridge.E010  LMS_BRIDGE_BACKENDS is not a list of dicts.
    lms_bridge.E011  a backend cannot be imported.
    lms_bridge.E012  a backend's SELECTOR_REGEX is not a valid regular expression.
    lms_bridge.E013  a backend's configuration is invalid (as the backend reports).
    lms_bridge.E014  LMS_BRIDGE_MAX_BODY_BYTES (or another size setting) is not a positive integer.
    lms_bridge.E015  a THROTTLE_RATE or LMS_BRIDGE_REJECTED_THROTTLE_RATE is not a rate such as "120/min".
    lms_bridge.W001  a hmac-sha256 or lernito secret is shorter than 16 characters.
    lms_bridge.W002  no backend is configured: every course is refused.
"""
import re

from django.core.checks import Error, Tags, Warning, register  # pylint: disable=redefined-builtin

from .conf import get_setting, source_from_setting
from .registry import config_from_setting, import_backend_class
from .signatures import get_scheme_class
from .throttling import parse_rate

SLUG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MIN_PLAIN_SECRET_CHARS = 16


@register(Tags.security)
def check_sources(app_configs=None, **kwargs):  # pylint: disable=unused-argument
    """Check ``LMS_BRIDGE_SOURCES``."""
    sources = get_setting("LMS_BRIDGE_SOURCES")
    if not isinstance(sources, dict):
        return [Error("LMS_BRIDGE_SOURCES must be a dict of sources by slug.", id="lms_bridge.E001")]
    errors = []
    for slug, value in sources.items():
        where = f"LMS_BRIDGE_SOURCES[{slug!r}]"
        if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug) or not isinstance(value, dict):
            errors.append(Error(
                f"{where}: the key must be a slug (letters, digits, '-' or '_') and the value a dict.",
                id="lms_bridge.E001",
            ))
            continue
        source = source_from_setting(slug, value)
        try:
            scheme_class = get_scheme_class(source.scheme)
        except ImportError as exc:
            errors.append(Error(f"{where}: {exc}.", hint="Use standard-webhooks, hmac-sha256 or lernito.",
                                id="lms_bridge.E002"))
            continue
        problems = scheme_class.check_configuration(
            value.get("SECRETS"), value.get("TOLERANCE_SECONDS", source.tolerance), value.get("OPTIONS", {}),
        )
        if not scheme_class(source.secrets, options=source.options).is_open:
            errors.append(Error(
                f"{where} has no usable secret: the source is closed and answers every delivery with 503.",
                hint="Set SECRETS to a list of secrets, newest first.", id="lms_bridge.E003",
            ))
        errors.extend(Error(f"{where}: {problem}.", id="lms_bridge.E004") for problem in problems)
        try:
            parse_rate(value.get("THROTTLE_RATE"))
        except ValueError as exc:
            errors.append(Error(f"{where}: THROTTLE_RATE: {exc}.", id="lms_bridge.E015"))
        if scheme_class.name != "standard-webhooks":
            errors.extend(
                Warning(
                    f"{where}: SECRETS[{position}] is short; use at least {MIN_PLAIN_SECRET_CHARS} random characters.",
                    id="lms_bridge.W001",
                )
                for position, secret in enumerate(source.secrets)
                if isinstance(secret, str) and 0 < len(secret) < MIN_PLAIN_SECRET_CHARS
            )
    return errors


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
                 "LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS", "LMS_BRIDGE_RETRY_AFTER_SECONDS"):
        value = get_setting(name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            errors.append(Error(f"{name} must be a positive integer.", id="lms_bridge.E014"))
    try:
        parse_rate(get_setting("LMS_BRIDGE_REJECTED_THROTTLE_RATE"))
    except ValueError as exc:
        errors.append(Error(f"LMS_BRIDGE_REJECTED_THROTTLE_RATE: {exc}.", id="lms_bridge.E015"))
    return errors
