"""Settings hooks applied by the Open edX plugin system (``plugin_settings``)."""
