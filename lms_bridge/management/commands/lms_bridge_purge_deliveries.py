"""
Delete old webhook deliveries (and their operations): the audit trail holds
learner emails, so keep it only as long as your retention policy says.

    ./manage.py lms lms_bridge_purge_deliveries --older-than-days 365 [--dry-run]

Deliveries still being processed or awaiting a retry are kept whatever their age.
"""
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from lms_bridge.models import DeliveryStatus, WebhookDelivery

BATCH = 1000
UNFINISHED = (DeliveryStatus.RECEIVED, DeliveryStatus.PROCESSING)


class Command(BaseCommand):
    """Delete deliveries received before a cutoff, in batches."""

    help = "Delete webhook deliveries (and their operations) older than a number of days."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, required=True, help="keep the deliveries of the last N days")
        parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    def handle(self, *args, **options):
        days = options["older_than_days"]
        if days < 1:
            raise CommandError("--older-than-days must be at least 1.")
        cutoff = timezone.now() - timedelta(days=days)
        old = WebhookDelivery.objects.filter(received_at__lt=cutoff).exclude(status__in=UNFINISHED)
        if options["dry_run"]:
            self.stdout.write(f"{old.count()} deliveries received before {cutoff:%Y-%m-%d %H:%M} would be deleted.")
            return
        deleted = 0
        while True:
            # Batches keep each transaction (and its locks) short on a large table.
            ids = list(old.order_by("id").values_list("id", flat=True)[:BATCH])
            if not ids:
                break
            WebhookDelivery.objects.filter(id__in=ids).delete()
            deleted += len(ids)
        self.stdout.write(f"Deleted {deleted} deliveries received before {cutoff:%Y-%m-%d %H:%M}.")
