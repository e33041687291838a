"""
The contract every signature scheme follows.

Pure Python: nothing here imports Django or touches a database, so schemes can
be tested (and fuzzed) in isolation and reused by the command-line tools.
"""
import hmac
from dataclasses import dataclass

# A header longer than this is garbage; refusing it early bounds the work an
# unauthenticated caller can make us do.
MAX_HEADER_CHARS = 4096


class SignatureError(Exception):
    """
    A delivery's signature could not be verified.

    ``str(error)`` says why, for the audit record and the logs only: the
    sender always gets one uniform answer, so a prober learns nothing about
    which check failed.
    """


@dataclass(frozen=True)
class Verification:
    """
    What a successful verification establishes.

    Attributes:
        event_id (str | None): the sender's delivery id (the idempotency key),
            when the scheme carries one.
        timestamp (int | None): the signed send time (Unix seconds), when the
            scheme carries one.
        secret_index (int): which configured secret matched (0 is the first),
            so operators can tell when an old secret is no longer used.
    """

    event_id: str | None
    timestamp: int | None
    secret_index: int


class SignatureScheme:
    """
    Base class of the signature schemes.

    A scheme is built from one source's configuration (its secrets, replay
    tolerance and options) and verifies raw request bodies against it.
    Subclasses implement ``parse_secret``, ``verify`` and ``sign``.

    Attributes:
        name (str): the value of a source's ``SCHEME`` setting.
        replay_protected (bool): whether the scheme signs a timestamp, so that
            a captured delivery cannot be replayed outside the tolerance window.
    """

    name = ""
    replay_protected = False
    # A plain secret shorter than this is refused (a short one was guessed online in 21 tries);
    # below the recommended length the system checks warn.
    MIN_SECRET_BYTES = 16
    RECOMMENDED_SECRET_BYTES = 32
    # The body cap of a source using this scheme, unless the source sets MAX_BODY_BYTES
    # (None: LMS_BRIDGE_MAX_BODY_BYTES).
    DEFAULT_MAX_BODY_BYTES = None
    MAX_TOLERANCE_SECONDS = 3600

    def __init__(self, secrets, tolerance=300, options=None):
        """
        Arguments:
            secrets (list[str]): the source's secrets, newest first; every
                usable one is tried, which is how rotation works.
            tolerance (int): accepted clock difference in seconds.
            options (dict): scheme-specific options.
        """
        self.tolerance = tolerance
        self.options = dict(options or {})
        self.keys = []
        for index, secret in enumerate(secrets or []):
            try:
                self.keys.append((index, self.parse_secret(secret)))
            except ValueError:
                continue

    @property
    def is_open(self):
        """True when at least one secret is usable; a closed source refuses every delivery."""
        return bool(self.keys)

    @classmethod
    def parse_secret(cls, secret):
        """
        Turn a configured secret into HMAC key bytes.

        Raises:
            ValueError: the secret is not usable by this scheme.
        """
        if not isinstance(secret, str) or not secret:
            raise ValueError("a secret must be a non-empty string")
        key = secret.encode("utf-8")
        if len(key) < cls.MIN_SECRET_BYTES:
            raise ValueError(f"a secret must be at least {cls.MIN_SECRET_BYTES} bytes, not {len(key)}")
        return key

    @classmethod
    def check_configuration(cls, secrets, tolerance, options):
        """
        List the problems of a source configuration, for Django's system checks.

        Returns:
            list[str]: human-readable problems; empty when the configuration is usable.
        """
        problems = []
        # An empty list is not a problem here: it closes the source, which the
        # caller reports on its own.
        if not isinstance(secrets, (list, tuple)):
            problems.append("SECRETS must be a list of secrets, newest first")
        else:
            for position, secret in enumerate(secrets):
                try:
                    cls.parse_secret(secret)
                except ValueError as exc:
                    problems.append(f"SECRETS[{position}] is not usable: {exc}")
        valid_int = isinstance(tolerance, int) and not isinstance(tolerance, bool)
        if not valid_int or not 1 <= tolerance <= cls.MAX_TOLERANCE_SECONDS:
            problems.append(f"TOLERANCE_SECONDS must be an integer from 1 to {cls.MAX_TOLERANCE_SECONDS} (seconds)")
        if not isinstance(options, dict):
            problems.append("OPTIONS must be a dict")
        else:
            problems.extend(cls.check_options(options))
        return problems

    @classmethod
    def check_options(cls, options):  # pylint: disable=unused-argument
        """Return the problems of the scheme-specific options (none by default)."""
        return []

    def verify(self, body, headers, now):
        """
        Verify a delivery.

        Arguments:
            body (bytes): the raw request body, exactly as received.
            headers (Mapping[str, str]): the request headers (any case).
            now (float): the current Unix time.

        Returns:
            Verification: what the signature establishes.

        Raises:
            SignatureError: the delivery is not authentic (or not verifiable).
        """
        raise NotImplementedError

    def sign(self, body, event_id=None, timestamp=None, secret_index=0):
        """
        Produce the headers a sender would send with ``body``.

        Used by the operator commands and the tests; it is the sender's side of ``verify``.

        Returns:
            dict[str, str]: header name to value.
        """
        raise NotImplementedError

    # Helpers shared by the schemes.

    @staticmethod
    def lower_headers(headers):
        """Return the headers as a dict with lower-case names."""
        return {str(name).lower(): value for name, value in headers.items()}

    @staticmethod
    def header(headers, name):
        """
        Return a header's value, refusing absent, empty, overlong or non-ASCII values.

        Raises:
            SignatureError: the header is not usable.
        """
        value = headers.get(name.lower())
        if not isinstance(value, str) or not value.strip():
            raise SignatureError(f"missing {name} header")
        if len(value) > MAX_HEADER_CHARS:
            raise SignatureError(f"{name} header too long")
        if not value.isascii():
            raise SignatureError(f"{name} header is not ASCII")
        return value.strip()

    def first_matching_key(self, message, candidates):
        """
        Return the index of the first secret whose HMAC-SHA256 of ``message``
        equals one of the ``candidates`` (raw digests), or None.

        Every comparison is constant-time.
        """
        for index, key in self.keys:
            digest = hmac.new(key, message, "sha256").digest()
            matched = False
            for candidate in candidates:
                # No early exit on a match: the time taken must not depend on
                # which candidate (if any) matched.
                matched |= hmac.compare_digest(digest, candidate)
            if matched:
                return index
        return None

    def key_for_signing(self, secret_index):
        """Return the key bytes of the configured secret at ``secret_index``."""
        for index, key in self.keys:
            if index == secret_index:
                return key
        raise ValueError(f"no usable secret at index {secret_index}")
