"""
The OpenAPI description of the webhook, for drf-spectacular.

Declared here, as a view extension, so that lms_bridge itself does not depend
on drf-spectacular. The sandbox serves it at ``/api/schema/``;
``docs/openapi.yaml`` is generated from it (a test keeps the two equal).
"""
from django.conf import settings
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
    OpenApiParameter("X-Hub-Signature-256", str, OpenApiParameter.HEADER,
                     description="hmac-sha256 scheme: the header the source's OPTIONS['HEADER'] names "
                                 "(default X-Signature-SHA256), with its PREFIX (such as 'sha256=') and the "
                                 "HMAC-SHA256 of the raw body, hex (or base64: OPTIONS['ENCODING'])."),
    OpenApiParameter("X-Lernito-Signature", str, OpenApiParameter.HEADER,
                     description="lernito scheme: hex HMAC-SHA256 of the raw body (or of lernito-openedx's "
                                 "sorted JSON)."),
    OpenApiParameter("source", str, OpenApiParameter.PATH, description="A slug of LMS_BRIDGE_SOURCES."),
    OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[429, 503],
                     description="Seconds to wait before retrying (the same delivery id, the same body)."),
    OpenApiParameter("Idempotent-Replayed", str, OpenApiParameter.HEADER, response=[200, 400, 503],
                     description="'true' when this answer is the stored answer of an earlier copy of this "
                                 "delivery (the same id and body): nothing was done again."),
]
# Each source uses one scheme: the security requirement is any one of them (the schemes: sandbox settings).
SECURITY_SCHEMES = settings.SPECTACULAR_SETTINGS["APPEND_COMPONENTS"]["securitySchemes"]


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
                auth=[{name: []} for name in SECURITY_SCHEMES],
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
