"""
lms_bridge: enroll learners into Open edX from signed webhooks.
"""

__version__ = "0.1.0"
