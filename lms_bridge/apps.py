"""
Django application configuration, and its wiring into Open edX as a plugin.
"""
from django.apps import AppConfig
from edx_django_utils.plugins.constants import PluginSettings, PluginSignals, PluginURLs

# The platform's project type for the LMS (openedx.core.djangoapps.plugins.constants.ProjectType.LMS).
LMS = "lms.djangoapp"


class LmsBridgeConfig(AppConfig):
    """
    lms_bridge as an Open edX LMS plugin (entry point group ``lms.djangoapp``).

    The plugin mounts its URLs under ``/api/lms-bridge/`` and applies its
    settings defaults (``settings/common.py``) and production overrides
    (``settings/production.py``).
    """

    name = "lms_bridge"
    verbose_name = "LMS Bridge"
    default_auto_field = "django.db.models.BigAutoField"

    plugin_app = {
        PluginURLs.CONFIG: {
            LMS: {
                PluginURLs.NAMESPACE: "lms_bridge",
                PluginURLs.REGEX: r"^api/lms-bridge/",
                PluginURLs.RELATIVE_PATH: "urls",
            },
        },
        # The platform's retirement signal for plugins: a retired learner is scrubbed from the audit trail.
        PluginSignals.CONFIG: {
            LMS: {
                PluginSignals.RELATIVE_PATH: "retirement",
                PluginSignals.RECEIVERS: [{
                    PluginSignals.RECEIVER_FUNC_NAME: "retire_learner",
                    PluginSignals.SIGNAL_PATH: "openedx.core.djangoapps.user_api.accounts.signals.USER_RETIRE_LMS_MISC",
                    PluginSignals.DISPATCH_UID: "lms_bridge.retirement.retire_learner",
                }],
            },
        },
        PluginSettings.CONFIG: {
            LMS: {
                "common": {PluginSettings.RELATIVE_PATH: "settings.common"},
                "test": {PluginSettings.RELATIVE_PATH: "settings.common"},
                "devstack": {PluginSettings.RELATIVE_PATH: "settings.common"},
                "production": {PluginSettings.RELATIVE_PATH: "settings.production"},
            },
        },
    }

    def ready(self):
        # Importing the checks module registers the system checks (lms_bridge.E001...):
        # without it, `manage.py check` and the LMS's start would never run them.
        from . import checks, registry  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import

        registry.connect_signals()
