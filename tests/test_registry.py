"""Tests of the backend registry (select_backend, get_all_backends)."""
import pytest
from django.test import override_settings

from lms_bridge.backends.openedx import OpenEdxBackend
from lms_bridge.registry import RegistryError, get_all_backends, select_backend

from .backends.fakes import ScriptedBackend

ROUTED = [
    {"BACKEND": "tests.backends.fakes.ScriptedBackend", "BASE_URL": "https://a.example.com",
     "SELECTOR_REGEX": r"course-v1:OrgA\+"},
    {"BACKEND": "lms_bridge.backends.openedx.OpenEdxBackend", "SELECTOR_REGEX": r"course-v1:"},
]


class TestRegistry:
    """First match wins; None when nothing matches."""

    @override_settings(LMS_BRIDGE_BACKENDS=ROUTED)
    def test_first_match_wins(self):
        """Expected behavior: OrgA courses go to the first backend, others to the second."""
        assert isinstance(select_backend("course-v1:OrgA+Math101+2026"), ScriptedBackend)
        other = select_backend("course-v1:OrgB+Math101+2026")
        assert type(other) is OpenEdxBackend  # pylint: disable=unidiomatic-typecheck

    @override_settings(LMS_BRIDGE_BACKENDS=ROUTED)
    def test_no_match_is_none(self):
        """Expected behavior: a course no selector matches has no backend."""
        assert select_backend("edX/DemoX/2014") is None

    @override_settings(LMS_BRIDGE_BACKENDS=ROUTED)
    def test_regex_is_anchored_at_the_start(self):
        """Expected behavior: selectors match from the start of the course id (re.match)."""
        assert select_backend("xx course-v1:OrgA+Math101+2026") is None

    @override_settings(LMS_BRIDGE_BACKENDS=ROUTED)
    def test_get_all_backends_in_order_and_reused(self):
        """Expected behavior: all backends, in settings order, built once per process."""
        backends = get_all_backends()
        assert [b.configuration.base_url for b in backends] == ["https://a.example.com", ""]
        assert backends[0].name == "tests.backends.fakes.ScriptedBackend (https://a.example.com)"
        assert get_all_backends()[0] is backends[0]

    def test_settings_change_rebuilds(self):
        """Expected behavior: override_settings of LMS_BRIDGE_BACKENDS takes effect at once."""
        with override_settings(LMS_BRIDGE_BACKENDS=ROUTED):
            assert len(get_all_backends()) == 2
        with override_settings(LMS_BRIDGE_BACKENDS=ROUTED[1:]):
            assert len(get_all_backends()) == 1

    @pytest.mark.parametrize("value", [
        "not a list",
        [{"BACKEND": "no.such.Backend"}],
        [{"BACKEND": "lms_bridge.backends.openedx.OpenEdxBackend", "SELECTOR_REGEX": "("}],
        [{"BACKEND": "lms_bridge.models.WebhookDelivery"}],
    ])
    def test_unusable_setting_raises(self, value):
        """Expected behavior: a broken setting is a RegistryError (the view turns it into 503)."""
        with override_settings(LMS_BRIDGE_BACKENDS=value), pytest.raises(RegistryError):
            select_backend("course-v1:OrgA+Math101+2026")

    def test_default_is_the_in_process_backend(self, settings):
        """Expected behavior: with no setting, every course goes to the in-process Open edX backend."""
        del settings.LMS_BRIDGE_BACKENDS
        assert type(select_backend("course-v1:Any+Course+Run")) is OpenEdxBackend  # pylint: disable=unidiomatic-typecheck
