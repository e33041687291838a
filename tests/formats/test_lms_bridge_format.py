"""The lms-bridge (lernito-compatible) payload format."""
import pytest

from lms_bridge.formats import InvalidPayloadError, get_format_class

from .contract import PayloadFormatContract

DEMO = "course-v1:edX+DemoX+Demo_Course"
OTHER = "course-v1:OpenedX+Bridge+2026"


class TestLmsBridgeFormat(PayloadFormatContract):
    format_name = "lms-bridge"
    valid_cases = [
        ({"email": "ada@example.com", "courseIds": [DEMO]}, {}, [("ada@example.com", DEMO, "enroll", None)]),
        ({"email": " Ada@Example.com ", "courseIds": [DEMO, OTHER], "action": "unenroll"}, {},
         [("Ada@Example.com", DEMO, "unenroll", None), ("Ada@Example.com", OTHER, "unenroll", None)]),
        ({"email": "ada@example.com", "courseIds": [f" {DEMO} "]}, {}, [("ada@example.com", DEMO, "enroll", None)]),
        ({"email": "ada@example.com", "name": "Ada", "family": "Lovelace", "username": "ada",
          "courseIds": [DEMO], "mode": "verified"}, {}, [("ada@example.com", DEMO, "enroll", "verified")]),
    ]
    invalid_cases = [
        ({"courseIds": [DEMO]}, {}, "email"),
        ({"email": "not-an-email", "courseIds": [DEMO]}, {}, "email"),
        ({"email": "ada@example.com", "courseIds": []}, {}, "courseIds"),
        ({"email": "ada@example.com", "courseIds": ["nope"]}, {}, "Invalid course key format: nope"),
        ({"email": "ada@example.com", "courseIds": [DEMO, "nope"]}, {}, "Invalid course key format: nope"),
        ({"email": "ada@example.com", "courseIds": [DEMO, 7]}, {}, "courseIds: Must be a string."),
        ({"email": "ada@example.com", "courseIds": [DEMO, "  "]}, {}, "courseIds: This field may not be blank."),
        ({"email": "ada@example.com", "courseIds": DEMO}, {}, "courseIds: Expected a list of items"),
        ({"email": "ada@example.com", "courseIds": [DEMO, DEMO]}, {}, "Duplicate course id"),
        ({"email": "ada@example.com", "courseIds": [OTHER, DEMO, f" {DEMO} "]}, {}, f"Duplicate course id: {DEMO}"),
        # The list's own checks come first: its length, then each id, then duplicates.
        ({"email": "ada@example.com", "courseIds": [f"course-v1:O+C{n}+R" for n in range(100)] + ["course-v1:O+C1+R"]},
         {}, "no more than 100 elements"),
        ({"email": "ada@example.com", "courseIds": [DEMO, DEMO, "nope"]}, {}, "Invalid course key format: nope"),
        # A content library's key is a CourseKey too, but nobody enrolls in a library.
        ({"email": "ada@example.com", "courseIds": ["library-v1:Org+Lib"]}, {}, "Invalid course key format"),
        ({"email": "ada@example.com", "courseIds": ["course-v1:Org+Course+" + "r" * 250]}, {}, "no more than 255"),
        ({"email": "ada@example.com", "courseIds": [DEMO], "action": "delete"}, {}, "action"),
        ({"email": "ada@example.com", "courseIds": [DEMO], "mode": "no spaces"}, {}, "mode"),
        ({"email": 7, "courseIds": [DEMO]}, {}, "email"),
    ]

    def body_of_pairs(self, count):
        return {"email": "ada@example.com", "courseIds": [f"course-v1:Org+C{n}+Run" for n in range(count)]}

    def test_more_than_max_pairs_is_invalid_naming_the_limit(self):
        # One learner in at most 100 courses (the lernito limit) comes first.
        with pytest.raises(InvalidPayloadError) as caught:
            self.parse(self.body_of_pairs(6), max_pairs=5)
        assert "MAX_PAIRS" in caught.value.message

    def test_its_senders_expect_the_processed_answer(self):
        assert get_format_class("lms-bridge").default_mode == "sync"

    def test_ids_read_again_from_memory_give_what_they_gave_when_first_parsed(self):
        # Course ids are parsed once and then looked up (with each key's own text): ids new
        # to this process, then the same ids, then after far more others than are kept.
        from lms_bridge.serializers import PARSED_KEYS_KEPT  # pylint: disable=import-outside-toplevel

        fresh = [f"course-v1:Memo+C{n}+Run" for n in range(3)]
        body = {"email": "ada@example.com", "courseIds": [fresh[0], f" {fresh[1]} ", fresh[2]]}
        first = self.parse(body)
        assert [(r.course_id, str(r.course_key)) for r in first] == [(text, text) for text in fresh]
        assert self.parse(body) == first
        for start in range(0, PARSED_KEYS_KEPT + 100, 100):
            self.parse({"email": "ada@example.com",
                        "courseIds": [f"course-v1:Fill+C{n}+Run" for n in range(start, start + 100)]})
        again = self.parse(body)
        assert again == first
        assert [r.course_id for r in again] == fresh
        with pytest.raises(InvalidPayloadError) as caught:
            self.parse({"email": "ada@example.com", "courseIds": [fresh[0], f"{fresh[0]} "]})
        assert caught.value.message == f"Duplicate course id: {fresh[0]}"
