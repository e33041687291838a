"""
Django application configuration, and its wiring into Open edX as a plugin.
"""
from django.apps import AppConfig


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
        "url_config": {
            "lms.djangoapp": {
                "namespace": "lms_bridge",
                "regex": r"^api/lms-bridge/",
                "relative_path": "urls",
            },
        },
        # The platform's retirement signal for plugins: a retired learner is scrubbed from the audit trail.
        "signals_config": {
            "lms.djangoapp": {
                "relative_path": "retirement",
                "receivers": [{
                    "receiver_func_name": "retire_learner",
                    "signal_path": "openedx.core.djangoapps.user_api.accounts.signals.USER_RETIRE_LMS_MISC",
                    "dispatch_uid": "lms_bridge.retirement.retire_learner",
                }],
            },
        },
        "settings_config": {
            "lms.djangoapp": {
                "common": {"relative_path": "settings.common"},
                "test": {"relative_path": "settings.common"},
                "devstack": {"relative_path": "settings.common"},
                "production": {"relative_path": "settings.production"},
            },
        },
    }

    def ready(self):
        # Importing the checks module registers the system checks (lms_bridge.E001...):
        # without it, `manage.py check` and the LMS's start would never run them.
        from . import checks, registry  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import

        registry.connect_signals()
