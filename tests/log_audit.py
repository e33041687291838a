"""
Suite-wide check: no learner email, secret or signature in any log line at
INFO or above, in the test process or in the live servers it starts.

``tests/conftest.py`` installs the handler when the session starts and fails
the session at the end if a line leaked.
"""
import logging
import re

from .signing import GITHUB_SECRET, TEST_LEGACY_SECRET, TEST_SECRET, TEST_SECRET_OLD

FORBIDDEN = [
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "an email address"),
    (re.compile(r"v1,[A-Za-z0-9+/]{20,}"), "a Standard Webhooks signature"),
    (re.compile(r"\b[0-9a-fA-F]{64}\b"), "a hex HMAC digest"),
    (re.compile("|".join(re.escape(s) for s in (TEST_SECRET, TEST_SECRET_OLD, TEST_LEGACY_SECRET, GITHUB_SECRET,
                                                 TEST_SECRET[6:], TEST_SECRET_OLD[6:]))), "a secret"),
]


class AuditHandler(logging.Handler):
    """Keeps every record at INFO or above."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.lines = []

    def emit(self, record):
        try:
            self.lines.append(f"{record.name}: {record.getMessage()}")
        except Exception:  # pylint: disable=broad-except
            self.lines.append(f"{record.name}: <unformattable {record.msg!r}>")


HANDLER = AuditHandler()
SERVER_OUTPUT = []


def leaks(lines):
    """Return (what, line) for each line holding something forbidden."""
    found = []
    for line in lines:
        for pattern, what in FORBIDDEN:
            if pattern.search(line):
                found.append((what, line[:300]))
    return found
