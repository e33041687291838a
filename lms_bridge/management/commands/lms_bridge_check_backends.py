"""
Check every configured backend: authenticate and make one cheap read.

    ./manage.py lms_bridge_check_backends

Prints a table (backend, base URL, selector, OK or the reason) and exits
non-zero when any backend fails: the operator's smoke test after a deploy.
"""
from django.core.management.base import BaseCommand, CommandError

from lms_bridge.backends.base import BackendError
from lms_bridge.registry import RegistryError, get_all_backends


class Command(BaseCommand):
    """Check each entry of LMS_BRIDGE_BACKENDS and report."""

    help = "Check every configured LMS backend (authentication and a cheap read)."

    def handle(self, *args, **options):
        try:
            backends = get_all_backends()
        except RegistryError as exc:
            raise CommandError(f"LMS_BRIDGE_BACKENDS is unusable: {exc}") from exc
        rows, failures = [], 0
        for backend in backends:
            try:
                detail = backend.check()
                status = f"OK ({detail})" if detail else "OK"
            except BackendError as exc:
                status, failures = f"FAILED: {exc}", failures + 1
            except Exception as exc:  # pylint: disable=broad-except
                status, failures = f"FAILED: unexpected {type(exc).__name__}", failures + 1
            config = backend.configuration
            rows.append((config.backend, config.base_url or "(this LMS)", config.selector_regex, status))
        headers = ("backend", "base URL", "selector", "status")
        widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(3)]
        for row in [headers, *rows]:
            self.stdout.write("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False))
                              + "  " + row[3])
        if failures:
            raise CommandError(f"{failures} of {len(rows)} backend(s) failed the check.", returncode=1)
