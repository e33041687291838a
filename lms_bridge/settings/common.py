"""
Defaults of lms_bridge's settings, applied to the LMS's settings module.
"""
import copy

from lms_bridge.conf import DEFAULTS


def plugin_settings(settings):
    """
    Give every ``LMS_BRIDGE_*`` setting its default, without overriding one
    the operator has already set.
    """
    for name, value in DEFAULTS.items():
        if not hasattr(settings, name):
            setattr(settings, name, copy.deepcopy(value))
