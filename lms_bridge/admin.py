"""
Django admin: the audit and repair console for support staff.

Everything is read-only, for everyone: an audit trail that can be edited or
deleted is no audit trail (the retention command, ``lms_bridge_purge_deliveries``,
is the only way records go). What staff may do is granted by permissions of its own:

``view``
    the lists, a delivery's page and the dashboard (``dashboard/``);
``reprocess_webhookdelivery``
    "reprocess": run processing again on failed or invalid deliveries (or, for a
    source that runs on Celery, queue them again), redoing only the pairs that
    did not succeed;
``export_enrollmentoperation``
    export the filtered operations as CSV.
"""
import json
import logging

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Q
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import admin_views
from .conf import get_source
from .models import SUCCESSFUL_OUTCOMES, DeliveryChunk, DeliveryStatus, EnrollmentOperation, Outcome, WebhookDelivery
from .processing import process_delivery, progress, requeue

log = logging.getLogger(__name__)

REPROCESSABLE = (DeliveryStatus.FAILED, DeliveryStatus.PARTIALLY_FAILED, DeliveryStatus.INVALID)
# Learners and courses named on a delivery's page before "and N more".
LISTED = 10


def _enqueue(delivery_id):
    from .tasks import enqueue_delivery  # pylint: disable=import-outside-toplevel

    enqueue_delivery(delivery_id)


class ReadOnlyAdminMixin:
    """No adding, no editing, no deleting, for anyone: rows are written by the webhook only."""

    def has_add_permission(self, request, obj=None):  # pylint: disable=unused-argument
        return False

    def has_change_permission(self, request, obj=None):  # pylint: disable=unused-argument
        return False

    def has_delete_permission(self, request, obj=None):  # pylint: disable=unused-argument
        return False


class EnrollmentOperationInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The per-course operations of a delivery."""

    model = EnrollmentOperation
    extra = 0
    can_delete = False
    fields = ("course_id", "email", "action", "mode", "backend", "outcome", "detail", "error", "attempts", "modified")
    readonly_fields = fields
    verbose_name_plural = _("learner-course pairs")


class DeliveryChunkInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The parts of a large delivery, each processed by a Celery task."""

    model = DeliveryChunk
    extra = 0
    can_delete = False
    fields = ("number", "pairs", "status", "attempts", "task_id", "lease_expires_at", "finished_at")
    readonly_fields = fields


def _sender_was_told(obj):
    """The status code and message of the answer the sender got."""
    if obj.response_status is None:
        return _("Not final yet (a queued delivery was answered 202 Accepted; the answer to its retries is "
                 "stored when processing ends)")
    return f"{obj.response_status} {admin_views.answer_message(obj.response_body)}".strip()


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every delivery that reached a configured source, verified or not."""

    list_display = (
        "received_at", "source", "event_id", "status", "response_status", "signature_valid", "operation_count",
    )
    list_filter = ("source", "status", "signature_valid", "received_at")
    search_fields = ("=uuid", "event_id", "operations__course_id")
    search_help_text = _("A learner's email (every delivery of theirs, invalid and rejected ones included), "
                         "a course id, an event id or a delivery id.")
    date_hierarchy = "received_at"
    inlines = (DeliveryChunkInline, EnrollmentOperationInline)
    actions = ("reprocess",)
    fieldsets = (
        (None, {"fields": ("status", "source", "received_at", "learners", "courses", "sender_was_told", "why",
                           "progress_summary")}),
        (_("Body"), {"fields": ("formatted_body",)}),
        (_("Answer"), {"fields": ("formatted_response",)}),
        (_("Technical details"), {"classes": ("collapse",), "fields": (
            "uuid", "event_id", "idempotency_key", "signature_valid", "signature_detail", "secret_index",
            "remote_addr", "body_sha256", "body_truncated", "headers", "attempts", "retryable", "pairs_total",
            "processing_started_at", "processed_at", "response_status",
        )}),
    )
    readonly_fields = (
        "status", "source", "received_at", "learners", "courses", "sender_was_told", "why", "progress_summary",
        "formatted_body", "formatted_response", "uuid", "event_id", "idempotency_key", "signature_valid",
        "signature_detail", "secret_index", "remote_addr", "body_sha256", "body_truncated", "headers", "attempts",
        "retryable", "pairs_total", "processing_started_at", "processed_at", "response_status",
    )
    list_select_related = False
    show_full_result_count = False

    def get_urls(self):
        dashboard = self.admin_site.admin_view(admin_views.DashboardView.as_view(model_admin=self))
        return [path("dashboard/", dashboard, name="lms_bridge_dashboard"), *super().get_urls()]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_operation_count=Count("operations"))

    def get_search_results(self, request, queryset, search_term):
        """
        An email finds every delivery of that learner: by its operations, and by
        its body for deliveries that have none (invalid, rejected, not processed yet).
        """
        term = search_term.strip()
        if "@" in term and " " not in term:
            matches = queryset.filter(Q(operations__email__iexact=term) | Q(body__icontains=term))
            return matches.distinct(), True
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("pairs"), ordering="_operation_count")
    def operation_count(self, obj):
        return obj._operation_count  # pylint: disable=protected-access

    def _pairs(self, obj, field):
        """The first LISTED distinct values of one field of the delivery's operations, and how many more."""
        values = obj.operations.order_by(field).values_list(field, flat=True).distinct()
        shown = list(values[:LISTED])
        if not shown:
            return "-"
        more = values.count() - len(shown) if len(shown) == LISTED else 0
        return f"{', '.join(shown)} (and {more} more)" if more > 0 else ", ".join(shown)

    @admin.display(description=_("learners"))
    def learners(self, obj):
        return self._pairs(obj, "email")

    @admin.display(description=_("courses"))
    def courses(self, obj):
        return self._pairs(obj, "course_id")

    @admin.display(description=_("sender was told"))
    def sender_was_told(self, obj):
        return _sender_was_told(obj)

    @admin.display(description=_("why"))
    def why(self, obj):
        """The reason support needs: the refusal, or the pairs that failed and what their backend said."""
        if not obj.signature_valid:
            return obj.signature_detail or "-"
        failing = obj.operations.exclude(outcome__in=(*SUCCESSFUL_OUTCOMES, Outcome.PENDING))
        rows = list(failing.values_list("course_id", "outcome", "detail")[:LISTED])
        if rows:
            return format_html_join(mark_safe("<br>"), "{}: {} ({})", rows)
        body = obj.response_body if isinstance(obj.response_body, dict) else {}
        invalid = body.get("results") or body.get("errors")
        if obj.status == DeliveryStatus.INVALID and invalid:
            return json.dumps(invalid)[:2000]
        return "-"

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

    @admin.display(description=_("answer"))
    def formatted_response(self, obj):
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(obj.response_body, indent=2))

    def has_reprocess_permission(self, request):
        return request.user.has_perm("lms_bridge.reprocess_webhookdelivery")

    @admin.action(description=_("Reprocess selected failed or invalid deliveries"), permissions=("reprocess",))
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
    """Every per-course operation, searchable by learner and course, exportable as CSV."""

    list_display = ("created", "email", "course_id", "action", "mode", "outcome", "backend", "delivery_link")
    list_filter = ("outcome", "action", "delivery__source", "created")
    search_fields = ("email", "course_id", "delivery__event_id", "=delivery__uuid")
    date_hierarchy = "created"
    list_select_related = ("delivery",)
    readonly_fields = ("delivery", "course_id", "email", "learner_key", "chunk", "action", "mode", "backend",
                       "outcome", "detail", "error", "attempts", "created", "modified")

    def get_urls(self):
        export = self.admin_site.admin_view(admin_views.export_operations(self))
        return [path("export/", export, name="lms_bridge_enrollmentoperation_export"), *super().get_urls()]

    def has_export_permission(self, request):
        return request.user.has_perm("lms_bridge.export_enrollmentoperation")

    def changelist_view(self, request, extra_context=None):
        query = request.GET.urlencode()
        export_url = reverse("admin:lms_bridge_enrollmentoperation_export") + (f"?{query}" if query else "")
        extra_context = {**(extra_context or {}), "can_export": self.has_export_permission(request),
                         "export_url": export_url}
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("delivery"))
    def delivery_link(self, obj):
        url = reverse("admin:lms_bridge_webhookdelivery_change", args=(obj.delivery_id,))
        return format_html('<a href="{}">{}</a>', url, obj.delivery.uuid)
