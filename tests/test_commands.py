"""Tests of the operator commands lms_bridge_sign and lms_bridge_send."""
import base64
import hashlib
import hmac
import io
import json
import shlex

import pytest
from django.core.management import CommandError, call_command

from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme

from .conftest import DEMO_COURSE, enrollment_of
from .signing import TEST_LEGACY_SECRET, TEST_SECRET


def run(*args, **options):
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def parse_sign_output(output):
    header_text, _, body = output.partition("\n\n")
    headers = dict(line.split(": ", 1) for line in header_text.splitlines())
    return headers, body.strip().encode()


class TestSignCommand:
    """lms_bridge_sign."""

    def test_signs_with_a_configured_source(self):
        """Expected behavior: Standard Webhooks headers that verify independently for the printed body."""
        headers, body = parse_sign_output(run(
            "lms_bridge_sign", "--source", "shop", "--email", "ada@example.com", "--course", DEMO_COURSE,
            "--mode", "verified", "--event-id", "msg_cli", "--timestamp", "1700000000",
        ))
        assert json.loads(body) == {"email": "ada@example.com", "courseIds": [DEMO_COURSE], "mode": "verified"}
        key = base64.b64decode(TEST_SECRET.removeprefix("whsec_"))
        expected = hmac.new(key, b"msg_cli.1700000000." + body, hashlib.sha256).digest()
        assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
        assert headers["webhook-id"] == "msg_cli"

    def test_lernito_with_secret_from_environment(self, monkeypatch):
        """Expected behavior: --scheme lernito --secret-env signs as the lernito README does."""
        monkeypatch.setenv("MY_SECRET", TEST_LEGACY_SECRET)
        data = '{"email": "a@example.com", "courseIds": ["course-v1:A+B+C"]}'
        headers, _ = parse_sign_output(run("lms_bridge_sign", "--scheme", "lernito", "--secret-env", "MY_SECRET",
                                           "--data", data))
        expected = hmac.new(TEST_LEGACY_SECRET.encode(), json.dumps(json.loads(data), sort_keys=True).encode(),
                            hashlib.sha256).hexdigest()
        assert headers == {"X-Lernito-Signature": expected}

    def test_curl_output(self):
        """Expected behavior: --curl prints a runnable curl command with the headers and body."""
        output = run("lms_bridge_sign", "--source", "shop", "--email", "a@example.com", "--course", DEMO_COURSE,
                     "--curl", "http://127.0.0.1:8000/api/lms-bridge/v1/webhooks/shop/")
        parts = shlex.split(output)
        assert parts[:5] == ["curl", "-sS", "-X", "POST", "http://127.0.0.1:8000/api/lms-bridge/v1/webhooks/shop/"]
        assert any(part.startswith("webhook-signature: v1,") for part in parts)

    @pytest.mark.parametrize("args,message", [
        ((), "Give --source"),
        (("--source", "nope", "--email", "a@example.com", "--course", DEMO_COURSE), "No source"),
        (("--source", "shop"), "Give --data"),
        (("--source", "shop", "--data", "{not json"), "not JSON"),
        (("--secret", "whsec_bad", "--data", "{}"), "No usable secret"),
        (("--scheme", "nope", "--secret", "x", "--data", "{}"), "unknown signature scheme"),
        (("--source", "shop", "--secret-env", "UNSET_VARIABLE_X", "--data", "{}"), "empty or unset"),
        (("--source", "shop", "--option", "novalue", "--data", "{}"), "KEY=VALUE"),
    ])
    def test_errors_are_clear(self, args, message):
        """Expected behavior: misuse ends with a CommandError that says what to do."""
        with pytest.raises(CommandError, match=message):
            run("lms_bridge_sign", *args)


@pytest.mark.django_db(transaction=True)
class TestSendCommand:
    """lms_bridge_send, against the live webhook served on 127.0.0.1."""

    def test_sends_and_prints_the_reply(self, live_server, courses, ada):
        """Expected behavior: the signed delivery is processed and the reply printed."""
        url = f"{live_server.url}/api/lms-bridge/v1/webhooks/shop/"
        output = run("lms_bridge_send", url, "--source", "shop", "--email", "ada@example.com",
                     "--course", DEMO_COURSE, "--mode", "verified")
        assert output.startswith("HTTP 200")
        assert json.loads(output.split("\n", 1)[1])["results"][0]["outcome"] == "enrolled"
        assert enrollment_of(ada, DEMO_COURSE) == ("verified", True)

    def test_non_2xx_is_an_error(self, live_server, courses):
        """Expected behavior: a refused delivery prints the reply and exits non-zero."""
        url = f"{live_server.url}/api/lms-bridge/v1/webhooks/shop/"
        wrong = StandardWebhooksScheme.generate_secret()
        out = io.StringIO()
        with pytest.raises(CommandError, match="answered 401"):
            call_command("lms_bridge_send", url, "--secret", wrong, "--email", "ada@example.com",
                         "--course", DEMO_COURSE, stdout=out)
        assert "Invalid signature" in out.getvalue()

    def test_unreachable_url(self):
        """Expected behavior: a connection failure is a clear error."""
        with pytest.raises(CommandError, match="Could not reach"):
            run("lms_bridge_send", "http://127.0.0.1:9/x/", "--source", "shop", "--data", "{}", "--timeout", "2")

    def test_bad_url(self):
        """Expected behavior: only http(s) URLs."""
        with pytest.raises(CommandError, match="must start with http"):
            run("lms_bridge_send", "file:///etc/passwd", "--source", "shop", "--data", "{}")


def test_the_sandbox_try_it_command_works_as_printed(tmp_path):
    """
    Expected behavior: `python manage.py lms_bridge_sign --source demo ...` in a
    fresh process with only the demo secret exported (as make run prints it)
    works although the sandbox's other source has no secret in that shell.
    """
    import os  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    from pathlib import Path  # pylint: disable=import-outside-toplevel

    from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme  # pylint: disable=import-outside-toplevel

    root = Path(__file__).resolve().parent.parent
    env = {key: value for key, value in os.environ.items() if not key.startswith("LMS_BRIDGE_")}
    env.update({"DJANGO_SETTINGS_MODULE": "sandbox.settings", "SANDBOX_DB": str(tmp_path / "db.sqlite3"),
                "LMS_BRIDGE_DEMO_SECRET": StandardWebhooksScheme.generate_secret(), "PYTHONPATH": str(root)})
    result = subprocess.run([sys.executable, "manage.py", "lms_bridge_sign", "--source", "demo", "--email",
                             "ada@example.com", "--course", "course-v1:edX+DemoX+Demo_Course"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "webhook-signature: v1," in result.stdout
