"""
Django admin: the audit and repair console for support staff.

Everything is read-only: an audit trail that can be edited is no audit trail.
The one action is "reprocess", which runs ``process_delivery`` again on
failed or invalid deliveries (or, for a source that runs on Celery, queues them
again) and redoes only the pairs that did not succeed.
Staff see these pages only with the models' view permission; reprocessing
needs the change permission.
"""
import json

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .conf import get_source
from .models import DeliveryChunk, DeliveryStatus, EnrollmentOperation, WebhookDelivery
from .processing import process_delivery, progress, requeue

REPROCESSABLE = (DeliveryStatus.FAILED, DeliveryStatus.PARTIALLY_FAILED, DeliveryStatus.INVALID)


def _enqueue(delivery_id):
    from .tasks import enqueue_delivery  # pylint: disable=import-outside-toplevel

    enqueue_delivery(delivery_id)


class ReadOnlyAdminMixin:
    """No adding and no editing: rows are written by the webhook only."""

    def has_add_permission(self, request, obj=None):  # pylint: disable=unused-argument
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(getattr(self, "extra_readonly_fields", ()))


class EnrollmentOperationInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The per-course operations of a delivery."""

    model = EnrollmentOperation
    extra = 0
    can_delete = False
    fields = ("course_id", "email", "action", "mode", "backend", "outcome", "detail", "error", "attempts", "modified")

    def has_change_permission(self, request, obj=None):
        return False


class DeliveryChunkInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The parts of a large delivery, each processed by a Celery task."""

    model = DeliveryChunk
    extra = 0
    can_delete = False
    fields = ("number", "pairs", "status", "attempts", "lease_expires_at", "finished_at")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every delivery that reached a configured source, verified or not."""

    list_display = (
        "received_at", "source", "event_id", "status", "response_status", "signature_valid", "operation_count",
    )
    list_filter = ("source", "status", "signature_valid", "received_at")
    search_fields = ("=uuid", "event_id", "operations__email", "operations__course_id")
    date_hierarchy = "received_at"
    inlines = (DeliveryChunkInline, EnrollmentOperationInline)
    actions = ("reprocess",)
    exclude = ("response_body", "body")
    extra_readonly_fields = ("progress_summary", "formatted_body", "formatted_response")
    list_select_related = False
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_operation_count=Count("operations"))

    @admin.display(description=_("courses"), ordering="_operation_count")
    def operation_count(self, obj):
        return obj._operation_count  # pylint: disable=protected-access

    @admin.display(description=_("progress"))
    def progress_summary(self, obj):
        """Pairs done of the total, by outcome (one aggregate query)."""
        counts = progress(obj)
        if not counts["total"]:
            return "-"
        detail = ", ".join(f"{outcome}: {n}" for outcome, n in sorted(counts.items())
                           if outcome not in ("total", "done", "pending"))
        return f"{counts['done']} of {counts['total']} pairs done ({detail or 'none yet'})"

    @admin.display(description=_("body"))
    def formatted_body(self, obj):
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", obj.body)

    @admin.display(description=_("response"))
    def formatted_response(self, obj):
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(obj.response_body, indent=2))

    @admin.action(description=_("Reprocess selected failed or invalid deliveries"), permissions=("change",))
    def reprocess(self, request, queryset):
        """Run processing again on each selected failed or invalid delivery."""
        done, still_failing, queued = 0, 0, 0
        for delivery in queryset.filter(signature_valid=True, status__in=REPROCESSABLE):
            source = get_source(delivery.source)
            # An async source is open only when Celery is configured (check E016).
            if source is not None and source.is_open and source.runs_async(delivery.pairs_total or 0):
                requeue(delivery)
                transaction.on_commit(lambda pk=delivery.pk: _enqueue(pk))
                queued += 1
                continue
            process_delivery(delivery, reprocess=True)
            delivery.refresh_from_db()
            if delivery.status == DeliveryStatus.PROCESSED:
                done += 1
            else:
                still_failing += 1
        skipped = queryset.count() - done - still_failing - queued
        if queued:
            self.message_user(request, ngettext(
                "%d delivery queued again for the Celery workers.",
                "%d deliveries queued again for the Celery workers.",
                queued,
            ) % queued, messages.SUCCESS)
        if done:
            self.message_user(request, ngettext(
                "%d delivery reprocessed successfully.", "%d deliveries reprocessed successfully.", done,
            ) % done, messages.SUCCESS)
        if still_failing:
            self.message_user(request, ngettext(
                "%d delivery still has failures: see its operations.",
                "%d deliveries still have failures: see their operations.", still_failing,
            ) % still_failing, messages.WARNING)
        if skipped:
            self.message_user(request, ngettext(
                "%d delivery was skipped: only verified, failed or invalid deliveries are reprocessed.",
                "%d deliveries were skipped: only verified, failed or invalid deliveries are reprocessed.", skipped,
            ) % skipped, messages.INFO)


@admin.register(EnrollmentOperation)
class EnrollmentOperationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every per-course operation, searchable by learner and course."""

    list_display = ("created", "email", "course_id", "action", "mode", "outcome", "backend", "delivery_link")
    list_filter = ("outcome", "action", "delivery__source", "created")
    search_fields = ("email", "course_id", "delivery__event_id", "=delivery__uuid")
    date_hierarchy = "created"
    list_select_related = ("delivery",)

    @admin.display(description=_("delivery"))
    def delivery_link(self, obj):
        url = reverse("admin:lms_bridge_webhookdelivery_change", args=(obj.delivery_id,))
        return format_html('<a href="{}">{}</a>', url, obj.delivery.uuid)

    def has_change_permission(self, request, obj=None):
        return False
