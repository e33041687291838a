"""Tests of lms_bridge."""
