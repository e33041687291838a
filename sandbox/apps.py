"""The sandbox's own app: the ``sandbox_setup`` command, and plugin signal wiring as the LMS does it."""
from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sandbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # As the LMS's plugins app does: connect the signal receivers plugins declare (signals_config).
        from edx_django_utils.plugins import connect_plugin_receivers  # pylint: disable=import-outside-toplevel

        connect_plugin_receivers("lms.djangoapp")
