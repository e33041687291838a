"""
Print the signature headers for a payload, as a sender must send them.

    ./manage.py lms_bridge_sign --source demo --email ada@example.com \
        --course course-v1:edX+DemoX+Demo_Course
    ./manage.py lms_bridge_sign --scheme lernito --secret-env SECRET --data @payload.json
"""
import shlex

from django.core.management.base import BaseCommand

from lms_bridge.management.signing import add_signing_arguments, build_body, build_scheme, sign


class Command(BaseCommand):
    """Print the headers that sign a webhook body (and, with --curl URL, a curl command)."""

    # A sender's tool: it needs only the source it signs for, not a fully valid
    # configuration (the LMS's own start reports that).
    requires_system_checks = []
    help = "Print the signature headers for a webhook payload."

    def add_arguments(self, parser):
        add_signing_arguments(parser)
        parser.add_argument("--curl", metavar="URL", help="print a complete curl command for this URL instead")

    def handle(self, *args, **options):
        scheme = build_scheme(options)
        body = build_body(options)
        headers = sign(scheme, body, options)
        if options.get("curl"):
            parts = ["curl", "-sS", "-X", "POST", options["curl"], "-H", "Content-Type: application/json"]
            for name, value in headers.items():
                parts += ["-H", f"{name}: {value}"]
            parts += ["--data-binary", body.decode("utf-8")]
            self.stdout.write(shlex.join(parts))
            return
        for name, value in headers.items():
            self.stdout.write(f"{name}: {value}")
        self.stdout.write("")
        self.stdout.write(body.decode("utf-8"))
