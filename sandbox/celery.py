"""
The sandbox LMS's Celery app, made as the Open edX LMS makes its own
(``openedx.core.lib.celery``): one app, configured from the Django settings
(old-style names: ``BROKER_URL``, ``CELERY_ALWAYS_EAGER``...), tasks found in
every installed app. Workers: ``celery -A sandbox.celery worker``.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.settings")

APP = Celery("proj")
APP.config_from_object("django.conf:settings")
APP.autodiscover_tasks()
