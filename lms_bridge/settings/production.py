"""
Production overrides of lms_bridge's settings.

Values come from the platform's settings as set by the operator (Tutor's
``openedx-lms-production-settings`` patch, or the YAML file the LMS loads into
``ENV_TOKENS`` on older releases). ``ENV_TOKENS`` is read defensively: newer
releases are moving away from it.
"""
from lms_bridge.conf import DEFAULTS
from lms_bridge.settings.common import plugin_settings as common_settings


def plugin_settings(settings):
    """Apply the defaults, then any ``LMS_BRIDGE_*`` value found in ``ENV_TOKENS``."""
    common_settings(settings)
    env_tokens = getattr(settings, "ENV_TOKENS", None)
    if not isinstance(env_tokens, dict):
        return
    for name in DEFAULTS:
        if name in env_tokens:
            setattr(settings, name, env_tokens[name])
