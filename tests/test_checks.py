"""Tests of the system checks: misconfiguration is reported at start-up."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from lms_bridge.checks import check_backends, check_sizes, check_sources

from .signing import TEST_SECRET


def ids(messages):
    return sorted(message.id for message in messages)


class TestSourceChecks:
    """LMS_BRIDGE_SOURCES."""

    @override_settings(LMS_BRIDGE_SOURCES={"shop": {"SECRETS": [TEST_SECRET]}})
    def test_valid_configuration_has_no_message(self):
        """Expected behavior: a good source is silent."""
        assert check_sources() == []

    @pytest.mark.parametrize("sources,expected", [
        ([], ["lms_bridge.E001"]),
        ({"bad slug!": {"SECRETS": [TEST_SECRET]}}, ["lms_bridge.E001"]),
        ({"shop": "whsec_x"}, ["lms_bridge.E001"]),
        ({"shop": {"SCHEME": "nope", "SECRETS": [TEST_SECRET]}}, ["lms_bridge.E002"]),
        ({"shop": {"SECRETS": []}}, ["lms_bridge.E003"]),
        ({"shop": {"SECRETS": ["not-a-whsec"]}}, ["lms_bridge.E003", "lms_bridge.E004"]),
        ({"shop": {"SECRETS": [TEST_SECRET, "bad"]}}, ["lms_bridge.E004"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "TOLERANCE_SECONDS": 0}}, ["lms_bridge.E004"]),
        ({"shop": {"SCHEME": "hmac-sha256", "SECRETS": ["x" * 32], "OPTIONS": {"ENCODING": "x"}}},
         ["lms_bridge.E004"]),
        # A 1-character plain secret was guessed online in 21 tries: unusable, so the source is closed.
        ({"shop": {"SCHEME": "lernito", "SECRETS": ["s"]}}, ["lms_bridge.E003", "lms_bridge.E004"]),
        ({"shop": {"SCHEME": "hmac-sha256", "SECRETS": ["fifteen-bytes!!"]}}, ["lms_bridge.E003", "lms_bridge.E004"]),
        ({"shop": {"SCHEME": "lernito", "SECRETS": ["sixteen-bytes!!!"]}}, ["lms_bridge.W001"]),
        ({"shop": {"SCHEME": "hmac-sha256", "SECRETS": ["x" * 32]}}, []),
        ({"shop": {"SECRETS": [TEST_SECRET], "TOLERANCE_SECONDS": "300"}}, ["lms_bridge.E004"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "TOLERANCE_SECONDS": 10**30}}, ["lms_bridge.E004"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "TOLERANCE_SECONDS": 3600}}, []),
        ({"shop": {"SECRETS": [TEST_SECRET], "TOLERANCE_SECONDS": True}}, ["lms_bridge.E004"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "THROTTLE_RATE": "lots"}}, ["lms_bridge.E015"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "SECRET": [TEST_SECRET]}}, ["lms_bridge.E004"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "MAX_BODY_BYTES": 0}}, ["lms_bridge.E004"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "COURSES": "(["}}, ["lms_bridge.E005"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "ACTIONS": ["delete"]}}, ["lms_bridge.E005"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "ACTIONS": []}}, ["lms_bridge.E005"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "FORCE_ENROLLMENT": "yes"}}, ["lms_bridge.E005"]),
        ({"shop": {"SECRETS": [TEST_SECRET], "COURSES": r"course-v1:Shop\+", "ACTIONS": ["enroll"],
                   "FORCE_ENROLLMENT": True, "MAX_BODY_BYTES": 4096}}, []),
    ])
    def test_problems_have_ids(self, sources, expected):
        """Expected behavior: each kind of problem is reported with its id."""
        with override_settings(LMS_BRIDGE_SOURCES=sources):
            assert ids(check_sources()) == expected

    @override_settings(LMS_BRIDGE_SOURCES={"shop": {"SECRETS": []}})
    def test_check_command_fails_at_start(self):
        """Expected behavior: manage.py check refuses to pass with a closed source."""
        with pytest.raises(SystemCheckError, match=r"lms_bridge\.E003"):
            call_command("check")


class TestBackendChecks:
    """LMS_BRIDGE_BACKENDS."""

    def test_default_is_fine(self):
        """Expected behavior: the test settings' backends pass."""
        assert check_backends() == []

    @pytest.mark.parametrize("backends,expected", [
        ("x", ["lms_bridge.E010"]),
        (["x"], ["lms_bridge.E010"]),
        ([], ["lms_bridge.W002"]),
        ([{"BACKEND": "no.such.Backend"}], ["lms_bridge.E011"]),
        ([{"BACKEND": "lms_bridge.backends.openedx.OpenEdxBackend", "SELECTOR_REGEX": "(["}], ["lms_bridge.E012"]),
    ])
    def test_problems_have_ids(self, backends, expected):
        """Expected behavior: unimportable classes and invalid regexes are errors at start-up."""
        with override_settings(LMS_BRIDGE_BACKENDS=backends):
            assert ids(check_backends()) == expected


@override_settings(LMS_BRIDGE_MAX_BODY_BYTES=0)
def test_size_settings():
    """Expected behavior: a non-positive size is an error."""
    assert ids(check_sizes()) == ["lms_bridge.E014"]


ROOT = Path(__file__).resolve().parent.parent


def manage_py_check(tmp_path, settings_text, env=None, args=()):
    """
    Run ``manage.py check`` in a fresh process with a settings module written
    for the test: nothing in that process imports lms_bridge.checks by hand,
    so only the app's own wiring can register the checks.
    """
    (tmp_path / "check_settings.py").write_text(textwrap.dedent(settings_text))
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "check_settings",
                   "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), **(env or {})}
    return subprocess.run([sys.executable, "manage.py", "check", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120, check=False)


def test_manage_py_check_runs_the_checks_in_a_fresh_process(tmp_path):
    """
    Expected behavior: with a closed source and LMS_BRIDGE_BACKENDS = "not-a-list",
    `manage.py check` (a new process, as the LMS starts) fails naming E003 and E010.
    """
    result = manage_py_check(tmp_path, """
        from sandbox.settings import *  # noqa
        LMS_BRIDGE_SOURCES = {"shop": {"SCHEME": "standard-webhooks", "SECRETS": []}}
        LMS_BRIDGE_BACKENDS = "not-a-list"
    """)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "lms_bridge.E003" in result.stderr and "lms_bridge.E010" in result.stderr


def test_manage_py_check_passes_on_a_good_configuration(tmp_path):
    """Expected behavior: the sandbox's configuration, with its secrets set, passes `manage.py check`."""
    from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme  # pylint: disable=import-outside-toplevel

    result = manage_py_check(tmp_path, "from sandbox.settings import *  # noqa\n", env={
        "LMS_BRIDGE_DEMO_SECRET": StandardWebhooksScheme.generate_secret(),
        "LMS_BRIDGE_LEGACY_SECRET": "x" * 32,
        "LMS_BRIDGE_CRM_SECRET": "y" * 32,
    })
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
