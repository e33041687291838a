"""Tests of the Open edX plugin wiring: entry point, settings hooks, URL mount."""
from importlib.metadata import entry_points
from types import SimpleNamespace

from django.urls import resolve, reverse

from lms_bridge.conf import DEFAULTS
from lms_bridge.settings import common, production


def test_entry_point_is_registered():
    """Expected behavior: the LMS finds the app through the lms.djangoapp entry point."""
    points = {point.name: point.value for point in entry_points(group="lms.djangoapp")}
    assert points["lms_bridge"] == "lms_bridge.apps:LmsBridgeConfig"


def test_urls_are_mounted_under_api_lms_bridge():
    """Expected behavior: the plugin's URL config mounts the webhook at /api/lms-bridge/v1/webhooks/<source>/."""
    assert reverse("lms_bridge:webhook", kwargs={"source": "shop"}) == "/api/lms-bridge/v1/webhooks/shop/"
    assert resolve("/api/lms-bridge/v1/webhooks/shop").func is resolve("/api/lms-bridge/v1/webhooks/shop/").func


def test_common_settings_fill_defaults_without_overriding():
    """Expected behavior: every default is set, and an operator's value is kept."""
    settings = SimpleNamespace(LMS_BRIDGE_MAX_BODY_BYTES=5)
    common.plugin_settings(settings)
    assert settings.LMS_BRIDGE_MAX_BODY_BYTES == 5
    assert settings.LMS_BRIDGE_SOURCES == {}
    assert all(hasattr(settings, name) for name in DEFAULTS)


def test_production_settings_read_env_tokens():
    """Expected behavior: LMS_BRIDGE_* values in ENV_TOKENS override the defaults."""
    settings = SimpleNamespace(ENV_TOKENS={"LMS_BRIDGE_SOURCES": {"shop": {"SECRETS": ["whsec_x"]}}, "OTHER": 1})
    production.plugin_settings(settings)
    assert settings.LMS_BRIDGE_SOURCES == {"shop": {"SECRETS": ["whsec_x"]}}
    assert not hasattr(settings, "OTHER")


def test_production_settings_without_env_tokens():
    """Expected behavior: releases without ENV_TOKENS (or with something else there) still get the defaults."""
    for settings in (SimpleNamespace(), SimpleNamespace(ENV_TOKENS=None)):
        production.plugin_settings(settings)
        assert settings.LMS_BRIDGE_MAX_BODY_BYTES == DEFAULTS["LMS_BRIDGE_MAX_BODY_BYTES"]
