"""
Test settings: the sandbox LMS (plugin wiring, ATOMIC_REQUESTS on, the LMS's
DRF defaults) with an in-memory database and fixed test secrets.
"""
import json
import os

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
    "limited": {"SCHEME": "standard-webhooks", "SECRETS": [TEST_SECRET], "THROTTLE_RATE": "3/min"},
    # A shop that sells only the OpenedX org's courses and never unenrolls.
    "scoped": {"SCHEME": "standard-webhooks", "SECRETS": [TEST_SECRET], "COURSES": r"course-v1:OpenedX\+",
               "ACTIONS": ["enroll"]},
    # The shop's payload, answered 202 and processed by the Celery workers.
    "shop-async": {"SCHEME": "standard-webhooks", "SECRETS": [TEST_SECRET], "MODE": "async"},
    # An HR system's cohort imports, answered once processed.
    "cohorts": {"SCHEME": "standard-webhooks", "SECRETS": [TEST_SECRET], "FORMAT": "bulk", "MODE": "sync",
                "MAX_PAIRS": 50},
    # The same on Celery: validated, answered 202, processed by the workers.
    "cohorts-async": {"SCHEME": "standard-webhooks", "SECRETS": [TEST_SECRET], "FORMAT": "bulk", "MODE": "async"},
}

# Celery as the LMS configures it (old-style names, read by sandbox/celery.py). The broker is the
# Redis a test starts (LMS_BRIDGE_TEST_REDIS_URL, passed to its server and worker processes); with
# none, a port nothing listens on: publishing fails, as with a broker that is down.
LMS_BRIDGE_CELERY = True
BROKER_URL = os.environ.get("LMS_BRIDGE_TEST_REDIS_URL", "redis://127.0.0.1:9/0")
BROKER_CONNECTION_TIMEOUT = 1
BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker killed mid-task: its unacknowledged tasks come back after this (Celery's default is an hour).
BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("LMS_BRIDGE_TEST_VISIBILITY_TIMEOUT", "3600"))}
CELERYD_PREFETCH_MULTIPLIER = 1
LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS = int(os.environ.get("LMS_BRIDGE_TEST_LEASE_SECONDS", "120"))
LMS_BRIDGE_TASK_BACKOFF_SECONDS = int(os.environ.get("LMS_BRIDGE_TEST_BACKOFF_SECONDS", "5"))
if os.environ.get("LMS_BRIDGE_TEST_BACKENDS"):
    # A worker or server process a test starts with its own backends (a fake remote LMS, say).
    LMS_BRIDGE_BACKENDS = json.loads(os.environ["LMS_BRIDGE_TEST_BACKENDS"])
if os.environ.get("LMS_BRIDGE_TEST_CHUNK_PAIRS"):
    LMS_BRIDGE_CHUNK_PAIRS = int(os.environ["LMS_BRIDGE_TEST_CHUNK_PAIRS"])

# MariaDB when tests/tools/mariadb.py runs the suite (make test does): the
# same settings Open edX uses for MySQL-compatible databases.
if os.environ.get("LMS_BRIDGE_TEST_MYSQL_PORT"):
    DATABASES["default"] = {  # noqa: F405
        "ENGINE": "django.db.backends.mysql",
        # A server process started by the live tests uses the test database pytest created.
        "NAME": os.environ.get("LMS_BRIDGE_TEST_MYSQL_NAME", "lms_bridge"),
        "HOST": os.environ["LMS_BRIDGE_TEST_MYSQL_HOST"],
        "PORT": os.environ["LMS_BRIDGE_TEST_MYSQL_PORT"],
        "USER": os.environ["LMS_BRIDGE_TEST_MYSQL_USER"],
        "PASSWORD": os.environ["LMS_BRIDGE_TEST_MYSQL_PASSWORD"],
        "ATOMIC_REQUESTS": True,
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    }
    if os.environ.get("LMS_BRIDGE_TEST_MYSQL_CHARSET") == "utf8mb3":
        # An install from before Tutor's move to utf8mb4: the database (so every
        # table lms_bridge creates) is utf8mb3, while the connection is utf8mb4.
        DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb3", "COLLATION": "utf8mb3_general_ci"}  # noqa: F405

# Monitoring custom attributes go to a recording backend (tests/telemetry.py), as to an APM in production.
OPENEDX_TELEMETRY = ["tests.telemetry.RecordingBackend"]
