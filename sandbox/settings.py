"""
Settings of the sandbox LMS (``make run``).

Mirrors how the Open edX LMS loads plugins: the installed apps, settings and
URLs of ``lms.djangoapp`` entry points come through edx-django-utils, so the
sandbox exercises lms_bridge's real plugin wiring.
"""
import os
import sys
from pathlib import Path

import django
from edx_django_utils.plugins import add_plugins, get_plugin_apps

BASE_DIR = Path(__file__).resolve().parent
# The edx-platform stand-in provides the real module paths (common.djangoapps...).
sys.path.insert(0, str(BASE_DIR / "edx_platform"))

SECRET_KEY = os.environ.get("SANDBOX_SECRET_KEY", "sandbox-only-not-a-secret")
DEBUG = os.environ.get("SANDBOX_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "sandbox.urls"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SANDBOX_DB", str(BASE_DIR.parent / "sandbox.sqlite3")),
        # As Tutor configures the LMS: every request in a transaction.
        "ATOMIC_REQUESTS": True,
        # A burst of concurrent deliveries must queue, not fail with "database is
        # locked": writers wait up to 20 s for the lock, transactions take it when
        # they begin (a deferred one that must upgrade its lock fails at once),
        # and WAL lets readers go on while one writer works.
        "OPTIONS": {"timeout": 20},
    },
}
if django.VERSION >= (5, 1):
    DATABASES["default"]["OPTIONS"].update({
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "openedx.core.djangoapps.content.course_overviews.apps.CourseOverviewsConfig",
    "common.djangoapps.course_modes.apps.CourseModesConfig",
    "common.djangoapps.student.apps.StudentConfig",
    "openedx.core.djangoapps.user_api.apps.UserAPIConfig",
    "sandbox",
]
INSTALLED_APPS += get_plugin_apps("lms.djangoapp")

MIDDLEWARE = [
    # As the LMS: the platform's per-request caches are emptied at each request's start and end.
    "edx_django_utils.cache.middleware.RequestCacheMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The LMS's DRF defaults: session authentication (which enforces CSRF) and no
# default permission. lms_bridge's view must not depend on them.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
try:  # the OpenAPI description (/api/schema/): in the test requirements, not make run's
    import drf_spectacular  # noqa: F401  pylint: disable=unused-import
except ImportError:
    pass
else:
    INSTALLED_APPS.insert(INSTALLED_APPS.index("rest_framework") + 1, "drf_spectacular")
    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
SPECTACULAR_SETTINGS = {
    "TITLE": "lms_bridge webhook",
    "DESCRIPTION": "Signed webhooks that enroll learners into Open edX.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["sandbox.openapi.only_the_webhook"],
    # The signature schemes, as OpenAPI security schemes (a source uses one of them).
    "APPEND_COMPONENTS": {"securitySchemes": {
        "standardWebhooks": {"type": "apiKey", "in": "header", "name": "webhook-signature",
                             "description": "Standard Webhooks: with webhook-id and webhook-timestamp, "
                                            "'v1,' + base64(HMAC-SHA256(secret, id.timestamp.body))."},
        "hmacSha256": {"type": "apiKey", "in": "header", "name": "X-Signature-SHA256",
                       "description": "Plain HMAC-SHA256 of the raw body in a header of the source's choosing."},
        "lernito": {"type": "apiKey", "in": "header", "name": "X-Lernito-Signature",
                    "description": "lernito-openedx compatible: hex HMAC-SHA256."},
    }},
}

RETIRED_USER_SALTS = ["sandbox-salt"]
RETIRED_EMAIL_FMT = "retired__user_{}@retired.invalid"

LMS_BRIDGE_SOURCES = {
    "demo": {
        "SCHEME": "standard-webhooks",
        "SECRETS": [os.environ["LMS_BRIDGE_DEMO_SECRET"]] if os.environ.get("LMS_BRIDGE_DEMO_SECRET") else [],
    },
    "legacy": {
        "SCHEME": "lernito",
        "SECRETS": [os.environ["LMS_BRIDGE_LEGACY_SECRET"]] if os.environ.get("LMS_BRIDGE_LEGACY_SECRET") else [],
    },
    # GitHub's way of signing, which many shops and CRMs copy.
    "crm": {
        "SCHEME": "hmac-sha256",
        "SECRETS": [os.environ["LMS_BRIDGE_CRM_SECRET"]] if os.environ.get("LMS_BRIDGE_CRM_SECRET") else [],
        "OPTIONS": {"HEADER": "X-Hub-Signature-256", "PREFIX": "sha256=", "ID_HEADER": "X-GitHub-Delivery"},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"lms_bridge": {"handlers": ["console"], "level": "INFO"}},
}

# Plugin settings last, as the LMS applies them: defaults for what is not set above.
add_plugins(__name__, "lms.djangoapp", "common")
