"""
What the two operator commands share: choosing a scheme and secret, and
building the body to sign.
"""
import json
import os
import sys

from django.core.management.base import CommandError

from lms_bridge.conf import get_source
from lms_bridge.signatures import DEFAULT_SCHEME, get_scheme_class


def add_signing_arguments(parser):
    """Add the options that choose how to sign and what to send."""
    who = parser.add_argument_group("signing (a configured source, or an explicit scheme and secret)")
    who.add_argument("--source", help="a slug of LMS_BRIDGE_SOURCES: use its scheme, options and first secret")
    who.add_argument("--scheme", help=f"signature scheme (default {DEFAULT_SCHEME})")
    who.add_argument("--secret", help="the secret (prefer --secret-env: arguments show in the process list)")
    who.add_argument("--secret-env", metavar="VAR", help="read the secret from this environment variable")
    who.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a scheme option (repeatable)")
    who.add_argument("--event-id", help="the delivery id to sign (default: a new random one)")
    who.add_argument("--timestamp", type=int, help="the Unix time to sign (default: now)")
    what = parser.add_argument_group("payload (a JSON document, or built from the fields)")
    what.add_argument("--data", help="the JSON body; '-' reads standard input, '@FILE' reads a file")
    what.add_argument("--email")
    what.add_argument("--course", action="append", default=[], metavar="COURSE_ID", help="repeatable")
    what.add_argument("--action", choices=("enroll", "unenroll"))
    what.add_argument("--mode")
    what.add_argument("--username")


def build_scheme(options):
    """
    Return the scheme instance to sign with, from ``--source`` or ``--scheme``/``--secret``.

    Raises:
        CommandError: neither is usable.
    """
    secret = options.get("secret")
    if options.get("secret_env"):
        secret = os.environ.get(options["secret_env"])
        if not secret:
            raise CommandError(f"The environment variable {options['secret_env']} is empty or unset.")
    extra = {}
    for item in options.get("option") or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CommandError(f"--option takes KEY=VALUE, not {item!r}.")
        extra[key] = value
    if options.get("source"):
        source = get_source(options["source"])
        if source is None:
            raise CommandError(f"No source {options['source']!r} in LMS_BRIDGE_SOURCES.")
        scheme_name, secrets, scheme_options = source.scheme, source.secrets, {**source.options, **extra}
        if secret:
            secrets = (secret,)
    else:
        if not secret:
            raise CommandError("Give --source, or --secret/--secret-env (with --scheme if not standard-webhooks).")
        scheme_name, secrets, scheme_options = options.get("scheme") or DEFAULT_SCHEME, (secret,), extra
    try:
        scheme = get_scheme_class(scheme_name)(secrets, options=scheme_options)
    except ImportError as exc:
        raise CommandError(str(exc)) from exc
    if not scheme.is_open:
        raise CommandError(f"No usable secret for the {scheme.name} scheme.")
    return scheme


def build_body(options):
    """
    Return the body bytes: ``--data`` as given, or a payload built from the field options.

    Raises:
        CommandError: no payload, or JSON that does not parse.
    """
    data = options.get("data")
    if data:
        if data == "-":
            text = sys.stdin.read()
        elif data.startswith("@"):
            try:
                with open(data[1:], encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise CommandError(f"Cannot read {data[1:]}: {exc}") from exc
        else:
            text = data
        try:
            json.loads(text)
        except ValueError as exc:
            raise CommandError(f"--data is not JSON: {exc}") from exc
        return text.encode("utf-8")
    if not options.get("email") or not options.get("course"):
        raise CommandError("Give --data, or at least --email and one --course.")
    payload = {"email": options["email"], "courseIds": options["course"]}
    for key in ("action", "mode", "username"):
        if options.get(key):
            payload[key] = options[key]
    return json.dumps(payload).encode("utf-8")


def sign(scheme, body, options):
    """Return the signature headers for ``body``."""
    return scheme.sign(body, event_id=options.get("event_id"), timestamp=options.get("timestamp"))
