"""
The sandbox: a minimal Django project that runs lms_bridge the way the Open
edX LMS does (plugin entry point, plugin settings and URLs, ATOMIC_REQUESTS),
on SQLite, with a stand-in for the parts of edx-platform it uses.

Used by ``make run`` and, through ``tests/settings.py``, by the test suite.
Not shipped in the wheel.
"""

try:
    # As the LMS's lms/__init__.py does: the Celery app exists whenever the project's code runs.
    from .celery import APP as CELERY_APP
except ImportError:  # Celery is optional (lms-bridge[celery])
    CELERY_APP = None
