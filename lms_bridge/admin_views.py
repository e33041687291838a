"""
The admin pages that are not a model's list or form: the dashboard, and the CSV
export of the filtered operations. Both are read-only and bounded in what they read.
"""
import csv
import logging
from collections import Counter
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max
from django.db.models.functions import TruncDate
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.generic import TemplateView

from .conf import get_setting
from .models import DeliveryStatus, EnrollmentOperation, Outcome, WebhookDelivery

log = logging.getLogger(__name__)

DAYS = 30
# Failed deliveries read to rank failure reasons: the most recent ones.
REASONS_SAMPLE = 5000
TOP_REASONS = 10
SUCCESS_STATUSES = (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED)
# The chart's groups of statuses, in stacking order, with their colours.
STATUS_GROUPS = (
    ("succeeded", (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED), "#2e7d32"),
    ("in progress", (DeliveryStatus.RECEIVED, DeliveryStatus.PROCESSING), "#1565c0"),
    ("failed", (DeliveryStatus.FAILED, DeliveryStatus.PARTIALLY_FAILED), "#c62828"),
    ("invalid", (DeliveryStatus.INVALID,), "#ef6c00"),
    ("rejected", (DeliveryStatus.REJECTED, DeliveryStatus.CONFLICT), "#757575"),
)
FAILED_OUTCOMES = (Outcome.FAILED, Outcome.REFUSED, Outcome.RETRY)
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("created", "delivery", "source", "email", "course_id", "action", "mode", "backend", "outcome",
               "detail", "attempts")


def answer_message(body):
    """The sentence a stored answer told its sender ("" when it has none)."""
    return (body.get("message") or body.get("detail") or "") if isinstance(body, dict) else ""


def _changelist(name, **filters):
    return reverse(f"admin:lms_bridge_{name}_changelist") + ("?" + urlencode(filters) if filters else "")


class DashboardView(TemplateView):
    """Deliveries per day by status, the most frequent failure reasons, each source's last success."""

    template_name = "admin/lms_bridge/dashboard.html"
    model_admin = None

    def dispatch(self, request, *args, **kwargs):
        if not self.model_admin.has_view_permission(request):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        today = timezone.now().date()
        first = today - timedelta(days=DAYS - 1)
        recent = WebhookDelivery.objects.filter(received_at__date__gte=first)
        return {
            **super().get_context_data(**kwargs),
            **self.model_admin.admin_site.each_context(self.request),
            "title": "lms_bridge dashboard",
            "days": self._days(recent, first, today),
            "groups": [(label, colour) for label, _, colour in STATUS_GROUPS],
            "reasons": self._reasons(recent),
            "course_failures": self._course_failures(first),
            "sources": self._sources(),
        }

    @staticmethod
    def _days(recent, first, today):
        """Each day's deliveries by status group, with their bars' heights and links."""
        counts = Counter()
        for row in recent.annotate(day=TruncDate("received_at")).values("day", "status").annotate(n=Count("id")):
            counts[(row["day"], row["status"])] += row["n"]
        days, peak = [], 1
        for offset in range(DAYS):
            day = first + timedelta(days=offset)
            start = timezone.make_aware(datetime.combine(day, datetime.min.time()))
            window = {"received_at__gte": str(start), "received_at__lt": str(start + timedelta(days=1))}
            segments = []
            for label, statuses, colour in STATUS_GROUPS:
                number = sum(counts[(day, status)] for status in statuses)
                if number:
                    link = _changelist("webhookdelivery", **window, status__in=",".join(statuses))
                    segments.append({"label": label, "count": number, "colour": colour, "url": link})
            total = sum(segment["count"] for segment in segments)
            peak = max(peak, total)
            days.append({"day": day, "total": total, "segments": segments,
                         "url": _changelist("webhookdelivery", **window), "is_today": day == today})
        for day in days:
            for segment in day["segments"]:
                segment["height"] = max(2, round(segment["count"] / peak * 160))
        return days

    @staticmethod
    def _reasons(recent):
        """What the sender was told for failed, invalid and rejected deliveries, most frequent first."""
        refused = recent.exclude(status__in=(*SUCCESS_STATUSES, DeliveryStatus.RECEIVED, DeliveryStatus.PROCESSING))
        reasons = Counter()
        rows = refused.order_by("-received_at").values_list("status", "signature_valid", "signature_detail",
                                                            "response_body")[:REASONS_SAMPLE]
        for status, valid, detail, body in rows:
            message = detail if not valid else answer_message(body)
            reasons[(status, (message or "-")[:200])] += 1
        return [{"status": DeliveryStatus(status).label, "reason": reason, "count": count,
                 "url": _changelist("webhookdelivery", status=status)}
                for (status, reason), count in reasons.most_common(TOP_REASONS)]

    @staticmethod
    def _course_failures(first):
        """The failing pairs' details (what the backend said), most frequent first."""
        rows = (EnrollmentOperation.objects.filter(created__date__gte=first, outcome__in=FAILED_OUTCOMES)
                .values("outcome", "detail").annotate(n=Count("id")).order_by("-n")[:TOP_REASONS])
        return [{"outcome": Outcome(row["outcome"]).label, "detail": row["detail"][:200] or "-", "count": row["n"],
                 "url": _changelist("enrollmentoperation", outcome=row["outcome"])} for row in rows]

    @staticmethod
    def _sources():
        """Every configured source, and every source seen in the records, with its last successful delivery."""
        configured = list(get_setting("LMS_BRIDGE_SOURCES") or {})
        last = dict(WebhookDelivery.objects.filter(status__in=SUCCESS_STATUSES).values("source")
                    .annotate(last=Max("received_at")).values_list("source", "last"))
        seen = set(WebhookDelivery.objects.order_by().values_list("source", flat=True).distinct())
        return [{"slug": slug, "configured": slug in configured, "last_success": last.get(slug),
                 "url": _changelist("webhookdelivery", source=slug),
                 "failures_url": _changelist("webhookdelivery", source=slug,
                                             status__in=f"{DeliveryStatus.FAILED},{DeliveryStatus.PARTIALLY_FAILED}")}
                for slug in sorted(set(configured) | seen)]


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: a leading formula character is escaped with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    """csv.writer's file: hands each formatted line back."""

    def write(self, value):
        return value


def export_operations(model_admin):
    """The view that streams the operations the changelist shows (its filters and search) as CSV."""

    def view(request):
        if not (model_admin.has_view_permission(request) and model_admin.has_export_permission(request)):
            raise PermissionDenied
        changelist = model_admin.get_changelist_instance(request)
        queryset = changelist.get_queryset(request).select_related("delivery").order_by("id")
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(CSV_COLUMNS)
            count = 0
            for operation in queryset.iterator(chunk_size=2000):
                count += 1
                yield writer.writerow([spreadsheet_safe(value) for value in (
                    operation.created.isoformat(), operation.delivery.uuid, operation.delivery.source,
                    operation.email, operation.course_id, operation.action, operation.mode, operation.backend,
                    operation.outcome, operation.detail, operation.attempts,
                )])
            log.info("lms_bridge admin: user %s exported %s operation(s)", request.user.pk, count)

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="lms-bridge-operations-{stamp}.csv"'
        return response

    return view
