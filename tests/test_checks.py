"""Tests of the system checks: misconfiguration is reported at start-up."""
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
        ({"shop": {"SCHEME": "hmac-sha256", "SECRETS": ["long-enough-secret-1"], "OPTIONS": {"ENCODING": "x"}}},
         ["lms_bridge.E004"]),
        ({"shop": {"SCHEME": "lernito", "SECRETS": ["short"]}}, ["lms_bridge.W001"]),
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
