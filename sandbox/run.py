"""
``make run``: migrate the SQLite sandbox, fill it, and serve the webhook.

Secrets come from ``LMS_BRIDGE_DEMO_SECRET``, ``LMS_BRIDGE_LEGACY_SECRET`` and
``LMS_BRIDGE_CRM_SECRET`` when set, else they are generated and printed; they are passed to the server
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
    # The sandbox's sources (sandbox/settings.py): one per scheme, each with a secret for this run.
    sources = (("demo", "standard-webhooks", "LMS_BRIDGE_DEMO_SECRET", StandardWebhooksScheme.generate_secret),
               ("legacy", "lernito", "LMS_BRIDGE_LEGACY_SECRET", lambda: secrets.token_urlsafe(24)),
               ("crm", "hmac-sha256", "LMS_BRIDGE_CRM_SECRET", lambda: secrets.token_urlsafe(24)))
    for _, _, variable, generate in sources:
        if not os.environ.get(variable):
            os.environ[variable] = generate()

    import django  # pylint: disable=import-outside-toplevel
    from django.core.management import call_command  # pylint: disable=import-outside-toplevel

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("sandbox_setup")
    url = f"http://127.0.0.1:{port}/api/lms-bridge/v1/webhooks"
    # Relative to the project, as the user runs it: no virtualenv to activate.
    python = os.path.relpath(sys.executable, ROOT) if Path(sys.executable).is_relative_to(ROOT) else sys.executable
    course = "course-v1:edX+DemoX+Demo_Course"
    lines = ["", "Webhook sources (secrets for this run; set them in the environment to keep them):"]
    tries = []
    for slug, scheme, variable, _ in sources:
        lines.append(f"  {slug:<7}{scheme:<19}{url}/{slug}/   {variable}={os.environ[variable]}")
        tries.append(f"  {variable}='{os.environ[variable]}' {python} manage.py lms_bridge_send {url}/{slug}/ "
                     f"--source {slug} --email ada@example.com --course {course}"
                     + (" --mode verified" if slug == "demo" else ""))
    lines += [f"Admin: http://127.0.0.1:{port}/admin/ (the login is printed above)", "",
              "Try it, from this directory in another shell (each command signs with its source's scheme):", *tries, ""]
    print("\n".join(lines), flush=True)
    os.chdir(ROOT)
    os.execv(sys.executable,  # noqa: S606 (a fixed argument list, no shell)
             [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload",
              # The admin's CSS and scripts, served by runserver although DEBUG is off.
              "--insecure"])


if __name__ == "__main__":
    main()
