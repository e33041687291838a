"""
A strict JSON reader for bodies that come from outside.

Python's ``json`` module is lenient in ways that are dangerous for a webhook:
it accepts duplicate keys (the last one silently wins, so a signer and a
reader can disagree about a value), ``NaN`` and ``Infinity``, numbers of any
length (a 5,000-digit integer costs real CPU and then raises ``ValueError``),
and it recurses on nesting until the interpreter runs out of stack.

This module is pure Python (no Django), so the signature schemes can use it too.
"""
import json
import math
import re

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 32
# The only way a parsed string can hold a lone surrogate, when the text itself holds none:
# an escape from \ud800 to \udfff (a literal backslash before "ud8..." is caught too, harmlessly).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class StrictJSONError(ValueError):
    """
    The body is not JSON that this application is willing to read.

    The message is safe to return to the sender: it describes the body's
    shape, never its content.
    """


def _reject_duplicate_keys(pairs):
    """Build a dict, refusing a key seen twice."""
    result = {}
    for key, value in pairs:
        if key in result:
            raise StrictJSONError("Duplicate key in JSON object")
        result[key] = value
    return result


def _reject_constant(name):
    raise StrictJSONError(f"{name} is not valid JSON")


def _parse_int(text):
    if len(text) > MAX_NUMBER_CHARS:
        raise StrictJSONError("Number too long")
    return int(text)


def _parse_float(text):
    """Parse a JSON float, refusing overlong text and values out of range."""
    if len(text) > MAX_NUMBER_CHARS:
        raise StrictJSONError("Number too long")
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError("Number out of range")
    return value


def _check_tree(value, max_depth):
    """
    Walk the parsed value without recursion: bound the depth and make sure
    every string can be stored (a lone surrogate such as ``"\\ud800"`` is
    valid JSON but cannot be encoded as UTF-8 by any database driver).
    """
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                raise StrictJSONError(f"JSON nested deeper than {max_depth} levels")
            if isinstance(node, dict):
                for key, child in node.items():
                    _check_string(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, str):
            _check_string(node)


def _tree_needs_walking(text, encodable, max_depth):
    """
    False when no parsed value can be nested too deep (fewer opening brackets than
    ``max_depth``) or hold a lone surrogate (the text is encodable and escapes none):
    one pass over the text in C instead of a walk over every value.
    """
    if text.count("[") + text.count("{") > max_depth or ("\\u" in text and _SURROGATE_ESCAPE.search(text)):
        return True
    if not encodable:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False


def _check_string(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise StrictJSONError("JSON string holds an unpaired surrogate") from None


def loads(data, max_depth=MAX_DEPTH):
    """
    Parse a JSON document strictly.

    Arguments:
        data (bytes | str): the raw body; bytes must be UTF-8 without a BOM.
        max_depth (int): deepest nesting of arrays and objects accepted.

    Returns:
        The parsed value (any JSON type).

    Raises:
        StrictJSONError: the body is not UTF-8, not JSON, or is hostile
            (duplicate keys, NaN/Infinity, overlong numbers, deep nesting).
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise StrictJSONError("Body is not valid UTF-8") from None
        encodable = True  # decoded from UTF-8: it holds no surrogate
    else:
        text, encodable = data, False
    if text.startswith("\ufeff"):
        raise StrictJSONError("Body starts with a byte order mark")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except RecursionError:
        raise StrictJSONError(f"JSON nested deeper than {max_depth} levels") from None
    except StrictJSONError:
        raise
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"Invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        # Raised by int() past sys.get_int_max_str_digits(), in case the limit above changes.
        raise StrictJSONError("Invalid JSON number") from exc
    if _tree_needs_walking(text, encodable, max_depth):
        _check_tree(value, max_depth)
    return value
