"""
The OpenAPI description of the webhook, for drf-spectacular.

Declared here, as a view extension, so that lms_bridge itself does not depend
on drf-spectacular. The sandbox serves it at ``/api/schema/``;
``docs/openapi.yaml`` is generated from it (a test keeps the two equal).
"""
from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import JSONParser

from lms_bridge.serializers import WebhookPayloadSerializer

RESULT = inline_serializer("CourseResult", {
    "courseId": serializers.CharField(),
    "outcome": serializers.CharField(help_text="enrolled, already_enrolled, mode_changed, allowed, already_allowed, "
                                                "unenrolled, not_enrolled, refused, failed, retry, or invalid"),
    "detail": serializers.CharField(),
})
REPLY = inline_serializer("DeliveryReply", {
    "success": serializers.BooleanField(),
    "message": serializers.JSONField(help_text="A sentence, or field errors by field name"),
    "delivery": serializers.UUIDField(allow_null=True, help_text="The delivery's id in the audit trail"),
    "results": RESULT.__class__(many=True),
})
HEADERS = [
    OpenApiParameter("webhook-id", str, OpenApiParameter.HEADER, description="Standard Webhooks: the delivery id "
                     "(letters, digits, '_', '-', ':'); reuse it when retrying."),
    OpenApiParameter("webhook-timestamp", str, OpenApiParameter.HEADER,
                     description="Standard Webhooks: Unix seconds, within the source's tolerance."),
    OpenApiParameter("webhook-signature", str, OpenApiParameter.HEADER,
                     description='Standard Webhooks: "v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>".'),
    OpenApiParameter("source", str, OpenApiParameter.PATH, description="A slug of LMS_BRIDGE_SOURCES."),
]


def reply(description):
    return OpenApiResponse(REPLY, description=description)


class WebhookViewSchema(OpenApiViewExtension):
    """Describes lms_bridge.views.WebhookView."""

    target_class = "lms_bridge.views.WebhookView"

    def view_replacement(self):
        class Described(self.target_class):  # pylint: disable=missing-class-docstring
            # The real view reads the raw body itself; for the description it takes JSON.
            parser_classes = (JSONParser,)

            @extend_schema(
                operation_id="lms_bridge_webhook",
                summary="Enroll or unenroll a learner (a signed webhook delivery)",
                description="The signature (scheme per source) covers the raw body. See the README.",
                request=WebhookPayloadSerializer,
                parameters=HEADERS,
                responses={
                    200: reply("Processed (success false: some course failed permanently); or a replayed delivery"),
                    202: reply("A copy of this delivery is being processed"),
                    400: reply("Invalid JSON, payload or course; nothing was enrolled"),
                    401: reply("Invalid signature"),
                    404: reply("Unknown source"),
                    405: reply("Method not allowed"),
                    409: reply("webhook-id already used with another body"),
                    413: reply("Body too large"),
                    415: reply("Content-Type is not JSON"),
                    429: reply("Too many deliveries; see Retry-After"),
                    503: reply("Source closed, or a transient failure; retry after Retry-After"),
                },
                examples=[OpenApiExample("enroll", value={"email": "ada@example.com", "courseIds": [
                    "course-v1:edX+DemoX+Demo_Course"], "mode": "verified"}, request_only=True)],
                auth=[],
            )
            def post(self, request, source):
                return super().post(request, source)

        return Described


def only_the_webhook(endpoints):
    """Describe the webhook only (not the sandbox's own endpoints), once (with its trailing slash)."""
    return [
        endpoint for endpoint in endpoints
        if endpoint[0].startswith("/api/lms-bridge/") and endpoint[0].endswith("/")
    ]
