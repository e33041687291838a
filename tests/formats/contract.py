"""
The contract every payload format must pass.

A format's test class inherits ``PayloadFormatContract`` and gives valid bodies
with the requests they stand for, invalid bodies with the field their error
must name, ignored ones, and a body of ``n`` pairs (for the limits). Formats
know nothing of HTTP or the database: these tests have no database access, so
a format that queried one would fail here.
"""
import copy
import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from opaque_keys.edx.keys import CourseKey

from lms_bridge.formats import EnrollmentRequest, Ignored, InvalidPayloadError, get_format_class


def _text(body):
    return body if isinstance(body, str) else json.dumps(body)


class PayloadFormatContract:
    """Inherit, and define the members below."""

    #: the name a source's FORMAT uses
    format_name = None
    #: [(body, headers, [(email, course_id, action, mode), ...])]
    valid_cases = ()
    #: [(body, headers, fragment the message must contain)]
    invalid_cases = ()
    #: [(body, headers)] of deliveries that need no action
    ignored_cases = ()
    #: the headers every body is sent with (a topic, say)
    headers = {}

    def body_of_pairs(self, count):
        """A valid body of ``count`` distinct pairs."""
        raise NotImplementedError

    def make(self, max_pairs=10_000):
        return get_format_class(self.format_name)(max_pairs=max_pairs)

    def parse(self, body, headers=None, max_pairs=10_000):
        return self.make(max_pairs).parse(_text(body), headers if headers is not None else dict(self.headers))

    def test_the_short_name_is_the_format(self):
        assert get_format_class(self.format_name).name == self.format_name

    def test_valid_bodies_become_normalized_requests(self):
        assert self.valid_cases, "a format needs valid cases"
        for body, headers, expected in self.valid_cases:
            requests = self.parse(body, headers)
            assert all(isinstance(request, EnrollmentRequest) for request in requests)
            assert all(isinstance(request.course_key, CourseKey) for request in requests)
            got = [(r.email, str(r.course_key), r.action, r.mode) for r in requests]
            assert got == expected, body

    def test_requests_are_immutable_values_like_those_built_one_at_a_time(self):
        for body, headers, _ in self.valid_cases:
            for request in self.parse(body, headers):
                given = {item.name: getattr(request, item.name) for item in dataclasses.fields(request) if item.init}
                twin = EnrollmentRequest(**given)
                assert (request, hash(request), repr(request)) == (twin, hash(twin), repr(twin))
                assert request.course_id == twin.course_id == str(request.course_key)
                assert copy.deepcopy(request) == request == copy.copy(request)
                with pytest.raises(dataclasses.FrozenInstanceError):
                    request.email = "someone-else@example.com"

    def test_each_invalid_body_names_its_field(self):
        assert self.invalid_cases, "a format needs invalid cases"
        for body, headers, fragment in self.invalid_cases:
            with pytest.raises(InvalidPayloadError) as caught:
                self.parse(body, headers)
            assert fragment in json.dumps(caught.value.message), (body, caught.value.message)

    @pytest.mark.parametrize("body", ["", "not json", "[1, 2]", '{"a": 1, "a": 2}', '{"x": NaN}', "null"])
    def test_a_body_that_is_not_a_json_object_is_invalid(self, body):
        with pytest.raises(InvalidPayloadError):
            self.parse(body)

    def test_ignored_deliveries_say_why(self):
        if not self.ignored_cases:
            pytest.skip("this format acts on every delivery")
        for body, headers in self.ignored_cases:
            with pytest.raises(Ignored) as caught:
                self.parse(body, headers)
            assert caught.value.reason

    def test_up_to_max_pairs_are_taken(self):
        requests = self.parse(self.body_of_pairs(5), max_pairs=5)
        assert len(requests) == 5
        assert len({(r.email.lower(), str(r.course_key)) for r in requests}) == 5

    def test_more_than_max_pairs_is_invalid_naming_the_limit(self):
        with pytest.raises(InvalidPayloadError) as caught:
            self.parse(self.body_of_pairs(6), max_pairs=5)
        assert "MAX_PAIRS" in caught.value.message and "5" in caught.value.message

    def test_the_default_body_cap_fits_max_pairs(self):
        fmt = self.make(max_pairs=2000)
        body = _text(self.body_of_pairs(2000))
        assert len(body.encode()) <= fmt.max_body_bytes(64 * 1024)

    def outcome(self, body, headers):
        """What parsing gives, comparable: the pairs, or the error's message."""
        try:
            return [(r.email, str(r.course_key), r.action, r.mode) for r in self.parse(body, headers)]
        except InvalidPayloadError as exc:
            return ("invalid", json.dumps(exc.message))
        except Ignored as exc:
            return ("ignored", exc.reason)

    def test_bodies_parsed_in_several_threads_at_once_each_get_their_own_outcome(self):
        """A format may share its validators between requests: none may see another's data or errors."""
        cases = [(body, headers) for body, headers, _ in (*self.valid_cases, *self.invalid_cases)]
        cases += list(self.ignored_cases)
        expected = [self.outcome(body, headers) for body, headers in cases]
        jobs = list(range(len(cases))) * 40
        with ThreadPoolExecutor(max_workers=8) as pool:
            got = list(pool.map(lambda index: (index, self.outcome(*cases[index])), jobs))
        assert [outcome for _, outcome in got] == [expected[index] for index in jobs]
