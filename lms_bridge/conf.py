"""
Settings of lms_bridge, read when used (never at import time).

Open edX imports plugin apps before its settings are final, so every setting
is looked up through ``get_setting`` at the moment it is needed, falling back
to the defaults below.
"""
from dataclasses import dataclass, field

from django.conf import settings

from .signatures import DEFAULT_SCHEME

DEFAULTS = {
    # Webhook sources by slug: {"SCHEME", "SECRETS", "TOLERANCE_SECONDS", "OPTIONS"}.
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
    # Bodies larger than this are refused with 413 before they are read.
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
}

DEFAULT_TOLERANCE_SECONDS = 300


def get_setting(name):
    """
    Return the value of an ``LMS_BRIDGE_*`` setting, or its default.

    Raises:
        KeyError: ``name`` is not a setting of this application.
    """
    return getattr(settings, name, DEFAULTS[name])


@dataclass(frozen=True)
class SourceConfig:
    """One webhook source, as configured in ``LMS_BRIDGE_SOURCES``."""

    slug: str
    scheme: str = DEFAULT_SCHEME
    secrets: tuple = ()
    tolerance: int = DEFAULT_TOLERANCE_SECONDS
    options: dict = field(default_factory=dict)
    throttle_rate: str | None = None


def source_from_setting(slug, value):
    """Build a SourceConfig from one entry of ``LMS_BRIDGE_SOURCES`` (no validation: see checks)."""
    value = value if isinstance(value, dict) else {}
    secrets = value.get("SECRETS", ())
    if isinstance(secrets, str):
        # A single string where a list belongs is a common slip; treat it as one secret.
        secrets = (secrets,)
    return SourceConfig(
        slug=slug,
        scheme=value.get("SCHEME", DEFAULT_SCHEME),
        secrets=tuple(secrets) if isinstance(secrets, (list, tuple)) else (),
        tolerance=value.get("TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS),
        options=value.get("OPTIONS") if isinstance(value.get("OPTIONS"), dict) else {},
        throttle_rate=value.get("THROTTLE_RATE"),
    )


def get_source(slug):
    """
    Return the configuration of the source ``slug``, or None when there is no such source.
    """
    sources = get_setting("LMS_BRIDGE_SOURCES")
    if not isinstance(sources, dict) or slug not in sources:
        return None
    return source_from_setting(slug, sources[slug])
