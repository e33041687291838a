"""
The sender's guide's code samples (docs/samples/) in Python, PHP, Node.js and curl + openssl:
each prints exactly the test vectors' headers (docs/samples/vectors.json, which lms_bridge's
own verifiers accept), and each sends a delivery that the running sandbox accepts, for every scheme.

``make test`` installs php-cli and nodejs and sets LMS_BRIDGE_SAMPLE_TESTS=required, so
there no language can be skipped.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lms_bridge.signatures import SignatureError
from lms_bridge.signatures.hmac_sha256 import HmacSha256Scheme
from lms_bridge.signatures.lernito import LernitoScheme
from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme

from .test_sandbox import sandbox  # noqa: F401  pylint: disable=unused-import

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "docs" / "samples"
VECTORS = json.loads((SAMPLES / "vectors.json").read_text(encoding="utf-8"))
LANGUAGES = {"python": ("python3", "sign.py"), "php": ("php", "sign.php"), "node": ("node", "sign.js"),
             "curl": ("sh", "sign.sh")}
REQUIRED = os.environ.get("LMS_BRIDGE_SAMPLE_TESTS") == "required"


def interpreter(language):
    program, script = LANGUAGES[language]
    found = shutil.which(program)
    if language == "curl" and not (shutil.which("openssl") and shutil.which("curl")):
        found = None
    if not found:
        if REQUIRED:
            pytest.fail(f"{program} is needed for the {language} sample (make test installs it)")
        pytest.skip(f"{program} is not installed")
    return [found, str(SAMPLES / script)]


def run_sample(language, env):
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return subprocess.run(interpreter(language), env={**base, **env}, capture_output=True, text=True, timeout=60,
                          check=False)


def scheme_of(vector):
    if vector["scheme"] == "standard-webhooks":
        return StandardWebhooksScheme([vector["secret"]])
    if vector["scheme"] == "hmac-sha256":
        return HmacSha256Scheme([vector["secret"]], options=vector["options"])
    return LernitoScheme([vector["secret"]])


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["scheme"] for vector in VECTORS])
def test_each_vector_is_what_lms_bridge_accepts(vector):
    """Expected behavior: lms_bridge's verifier accepts each vector's headers; a changed body is refused."""
    body = vector["body"].encode("utf-8")
    scheme = scheme_of(vector)
    now = vector.get("timestamp", 1767225600) + 10
    scheme.verify(body, vector["headers"], now)
    if vector["scheme"] != "lernito":
        assert scheme.sign(body, event_id=vector.get("webhook_id"), timestamp=vector.get("timestamp")) \
            == vector["headers"]
    with pytest.raises(SignatureError):
        scheme.verify(body.replace(b"ada@", b"eve@"), vector["headers"], now)


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("vector", VECTORS, ids=[vector["scheme"] for vector in VECTORS])
def test_each_sample_prints_the_vectors_headers(language, vector):
    env = {"LMS_BRIDGE_SCHEME": vector["scheme"], "LMS_BRIDGE_SECRET": vector["secret"], "BODY": vector["body"],
           "WEBHOOK_ID": vector.get("webhook_id", ""), "WEBHOOK_TIMESTAMP": str(vector.get("timestamp", ""))}
    if vector["scheme"] == "hmac-sha256":
        env.update({"HMAC_HEADER": vector["options"]["HEADER"], "HMAC_PREFIX": vector["options"]["PREFIX"]})
    done = run_sample(language, env)
    assert done.returncode == 0, done.stderr
    printed = dict(line.split(": ", 1) for line in done.stdout.splitlines() if line)
    assert printed == vector["headers"]


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_each_sample_enrolls_through_the_running_sandbox_with_every_scheme(language, sandbox):  # noqa: F811
    """Expected behavior: a real POST from each sample, to each of the sandbox's sources, is answered 200."""
    port, demo_secret, _ = sandbox
    sources = (("demo", "standard-webhooks", demo_secret), ("legacy", "lernito", "legacy-" + "x" * 32),
               ("crm", "hmac-sha256", "crm-" + "x" * 32))
    for slug, scheme, secret in sources:
        body = json.dumps({"email": f"{language}-{slug}@example.com", "courseIds": ["course-v1:edX+DemoX+Demo_Course"]})
        done = run_sample(language, {"LMS_BRIDGE_SCHEME": scheme, "LMS_BRIDGE_SECRET": secret, "BODY": body,
                                     "URL": f"http://127.0.0.1:{port}/api/lms-bridge/v1/webhooks/{slug}/"})
        assert done.returncode == 0, (slug, done.stdout, done.stderr)
        assert '"success": true' in done.stdout.replace('"success":true', '"success": true'), done.stdout
