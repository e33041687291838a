"""
Sign a payload, POST it to a webhook URL and print the reply.

    ./manage.py lms_bridge_send http://127.0.0.1:8000/api/lms-bridge/v1/webhooks/demo/ \
        --source demo --email ada@example.com --course course-v1:edX+DemoX+Demo_Course
"""
import json
import urllib.error
import urllib.request

from django.core.management.base import BaseCommand, CommandError

from lms_bridge.management.signing import add_signing_arguments, build_body, build_scheme, sign


class Command(BaseCommand):
    """Send one signed delivery and print the HTTP status and body; exit 1 unless 2xx."""

    # A sender's tool: it needs only the source it signs for, not a fully valid
    # configuration (the LMS's own start reports that).
    requires_system_checks = []
    help = "Sign a webhook payload, POST it to URL and print the reply."

    def add_arguments(self, parser):
        parser.add_argument("url", help="the webhook URL")
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
        add_signing_arguments(parser)

    def handle(self, *args, **options):
        scheme = build_scheme(options)
        body = build_body(options)
        if not options["url"].startswith(("http://", "https://")):
            raise CommandError("The URL must start with http:// or https://.")
        headers = {"Content-Type": "application/json", **sign(scheme, body, options)}
        # The scheme was checked above: only http(s) is opened.
        request = urllib.request.Request(options["url"], data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=options["timeout"]) as response:  # noqa: S310
                status, reply = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, reply = error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            raise CommandError(f"Could not reach {options['url']}: {error}") from error
        self.stdout.write(f"HTTP {status}")
        try:
            self.stdout.write(json.dumps(json.loads(reply), indent=2))
        except ValueError:
            self.stdout.write(reply.decode("utf-8", "replace"))
        if not 200 <= status < 300:
            raise CommandError(f"The webhook answered {status}.", returncode=1)
