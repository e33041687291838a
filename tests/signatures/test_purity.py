"""Signature verification is pure: importing and using it loads no Django."""
import subprocess
import sys
from pathlib import Path

PROGRAM = """
import sys
from lms_bridge.signatures import get_scheme_class, verify_signature
from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme
for name in ("standard-webhooks", "hmac-sha256", "lernito"):
    get_scheme_class(name)
scheme = StandardWebhooksScheme([StandardWebhooksScheme.generate_secret()])
assert verify_signature(scheme, b"{}", scheme.sign(b"{}", timestamp=1), 1).timestamp == 1
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("django", "rest_framework"))
print(loaded)
sys.exit(1 if loaded else 0)
"""


def test_signatures_import_no_django():
    """Expected behavior: the schemes verify in an interpreter where Django was never imported."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", PROGRAM], cwd=root, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
