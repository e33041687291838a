"""The bulk format: cohorts (learners x courses) and explicit pairs."""
import pytest

from lms_bridge.formats import InvalidPayloadError, get_format_class

from .contract import PayloadFormatContract

A = "course-v1:Org+A+2026"
B = "course-v1:Org+B+2026"


class TestBulkFormat(PayloadFormatContract):
    format_name = "bulk"
    valid_cases = [
        ({"learners": [{"email": "ada@example.com"}, {"email": "bob@example.com", "name": "Bob"}],
          "courseIds": [A, B], "mode": "audit"}, {},
         [("ada@example.com", A, "enroll", "audit"), ("ada@example.com", B, "enroll", "audit"),
          ("bob@example.com", A, "enroll", "audit"), ("bob@example.com", B, "enroll", "audit")]),
        ({"learners": [{"email": "ada@example.com"}], "courseIds": [A], "action": "unenroll"}, {},
         [("ada@example.com", A, "unenroll", None)]),
        ({"enrollments": [{"email": "ada@example.com", "courseId": A},
                          {"email": "ada@example.com", "courseId": B, "action": "unenroll"},
                          {"email": "bob@example.com", "courseId": A, "mode": "verified"}]}, {},
         [("ada@example.com", A, "enroll", None), ("ada@example.com", B, "unenroll", None),
          ("bob@example.com", A, "enroll", "verified")]),
    ]
    invalid_cases = [
        ({}, {}, "either 'learners'"),
        ({"learners": [], "courseIds": [A]}, {}, "learners"),
        ({"learners": [{"email": "ada@example.com"}], "courseIds": []}, {}, "courseIds"),
        ({"learners": [{"email": "ada@example.com"}], "enrollments": []}, {}, "either 'learners'"),
        ({"learners": [{"email": "ada@example.com"}, {"email": "nope"}], "courseIds": [A]}, {}, "learners[1].email"),
        ({"learners": [{"email": "ada@example.com"}], "courseIds": [A, "bad"]}, {},
         "courseIds[1]: Invalid course key format: bad"),
        ({"learners": [{"email": "ada@example.com"}], "courseIds": [A, 3]}, {}, "courseIds[1]: Must be a string."),
        ({"enrollments": [{"email": "ada@example.com", "courseId": A}, {"email": "ada@example.com"}]}, {},
         "enrollments[1].courseId"),
        ({"enrollments": [{"email": "ada@example.com", "courseId": A, "action": "drop"}]}, {},
         "enrollments[0].action"),
        ({"enrollments": [{"email": "ada@example.com", "courseId": A},
                          {"email": "ADA@example.com", "courseId": A}]}, {}, "listed twice"),
        ({"learners": [{"email": "ada@example.com"}], "courseIds": [A], "colour": "red"}, {}, "colour"),
        ({"enrollments": "ada@example.com"}, {}, "enrollments"),
    ]

    def body_of_pairs(self, count):
        return {"enrollments": [{"email": f"learner{n}@example.com", "courseId": A, "mode": "audit"}
                                for n in range(count)]}

    def test_a_cohort_too_large_is_refused_before_each_learner_is_validated(self):
        body = {"learners": [{"email": "x"}] * 3, "courseIds": [A, B]}  # 6 pairs, invalid emails too
        with pytest.raises(InvalidPayloadError) as caught:
            self.parse(body, max_pairs=5)
        assert "MAX_PAIRS" in caught.value.message

    def test_its_default_mode_is_auto(self):
        assert get_format_class("bulk").default_mode == "auto"
