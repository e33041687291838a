"""
``make run``: migrate the SQLite sandbox, fill it, and serve the webhook.

Secrets come from ``LMS_BRIDGE_DEMO_SECRET`` / ``LMS_BRIDGE_LEGACY_SECRET``
when set, else they are generated and printed; they are passed to the server
through its environment, so the signing commands below work as printed.
"""
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    """Prepare the sandbox and replace this process with the development server."""
    from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme  # pylint: disable=import-outside-toplevel

    port = os.environ.get("PORT", "8000")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.settings")
    if not os.environ.get("LMS_BRIDGE_DEMO_SECRET"):
        os.environ["LMS_BRIDGE_DEMO_SECRET"] = StandardWebhooksScheme.generate_secret()
    if not os.environ.get("LMS_BRIDGE_LEGACY_SECRET"):
        os.environ["LMS_BRIDGE_LEGACY_SECRET"] = secrets.token_urlsafe(24)

    import django  # pylint: disable=import-outside-toplevel
    from django.core.management import call_command  # pylint: disable=import-outside-toplevel

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("sandbox_setup")
    url = f"http://127.0.0.1:{port}/api/lms-bridge/v1/webhooks"
    python = sys.executable
    print(f"""
Webhook sources:
  demo   (standard-webhooks)  {url}/demo/    LMS_BRIDGE_DEMO_SECRET={os.environ['LMS_BRIDGE_DEMO_SECRET']}
  legacy (lernito)            {url}/legacy/  LMS_BRIDGE_LEGACY_SECRET={os.environ['LMS_BRIDGE_LEGACY_SECRET']}
Admin: http://127.0.0.1:{port}/admin/

Try it (in another shell, with the secret exported as above):
  {python} manage.py lms_bridge_send {url}/demo/ --source demo \\
      --email ada@example.com --course course-v1:edX+DemoX+Demo_Course --mode verified
""", flush=True)
    os.chdir(ROOT)
    os.execv(python,  # noqa: S606 (a fixed argument list, no shell)
             [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"])


if __name__ == "__main__":
    main()
