"""The sandbox's own app: only the ``sandbox_setup`` command lives here."""
from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sandbox"
    default_auto_field = "django.db.models.BigAutoField"
