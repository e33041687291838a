"""
Test settings: the sandbox LMS (plugin wiring, ATOMIC_REQUESTS on, the LMS's
DRF defaults) with an in-memory database and fixed test secrets.
"""
from sandbox.settings import *  # noqa: F403  pylint: disable=wildcard-import,unused-wildcard-import
from tests.signing import TEST_LEGACY_SECRET, TEST_SECRET, TEST_SECRET_OLD

DATABASES["default"]["NAME"] = ":memory:"  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LMS_BRIDGE_SOURCES = {
    # Rotation: the new secret first, the old one still accepted.
    "shop": {"SCHEME": "standard-webhooks", "SECRETS": [TEST_SECRET, TEST_SECRET_OLD], "TOLERANCE_SECONDS": 300},
    "github": {
        "SCHEME": "hmac-sha256",
        "SECRETS": ["github-secret-0123456789"],
        "OPTIONS": {"HEADER": "X-Hub-Signature-256", "PREFIX": "sha256=", "ID_HEADER": "X-GitHub-Delivery"},
    },
    "legacy": {"SCHEME": "lernito", "SECRETS": [TEST_LEGACY_SECRET]},
    "closed": {"SCHEME": "standard-webhooks", "SECRETS": []},
}
