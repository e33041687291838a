"""
Payload formats: how a source's verified body becomes enrollment requests.

A source's ``FORMAT`` names one: a built-in by its short name, or any
``PayloadFormat`` subclass by its dotted path. See ``base.PayloadFormat``.
"""
from django.utils.module_loading import import_string

from .base import (  # noqa: F401
    DEFAULT_MAX_PAIRS,
    EnrollmentRequest,
    Ignored,
    InvalidPayloadError,
    PayloadFormat,
)

DEFAULT_FORMAT = "lms-bridge"
BUILTIN_FORMATS = {
    "lms-bridge": "lms_bridge.formats.native.LmsBridgeFormat",
    "bulk": "lms_bridge.formats.bulk.BulkFormat",
}


def get_format_class(name):
    """
    Return the PayloadFormat subclass a source's ``FORMAT`` names.

    Raises:
        ImportError: no such format.
    """
    if not isinstance(name, str) or not name:
        raise ImportError(f"FORMAT must be a string, not {name!r}")
    path = BUILTIN_FORMATS.get(name, name)
    if "." not in path:
        raise ImportError(f"Unknown payload format {name!r}")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImportError(f"Unknown payload format {name!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, PayloadFormat)):
        raise ImportError(f"{path} is not a PayloadFormat subclass")
    return cls
