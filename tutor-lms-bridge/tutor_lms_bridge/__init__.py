"""The Tutor plugin of lms_bridge (``tutor plugins enable lms-bridge``)."""

__version__ = "0.1.0"
