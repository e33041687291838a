"""
Queue again (or process here) the deliveries (and chunks) a down broker or a dead worker left behind.

    ./manage.py lms_bridge_sweep                # queue them for the Celery workers (or process here without Celery)
    ./manage.py lms_bridge_sweep --here          # process them in this process
    ./manage.py lms_bridge_sweep --older-than 0  # also those received just now
    ./manage.py lms_bridge_sweep --progress      # and print the progress of the deliveries being processed

For installs without Celery beat; with it, schedule the ``lms_bridge.sweep`` task instead.
"""
from django.core.management.base import BaseCommand

from lms_bridge.conf import celery_configured
from lms_bridge.models import DeliveryStatus, WebhookDelivery
from lms_bridge.processing import progress
from lms_bridge.sweeping import stranded, sweep


class Command(BaseCommand):
    """The sweeper, for cron."""

    help = "Queue again (or process here) deliveries left received or whose lease expired."
    # A misconfigured source (closed, the checks say why) must not stop the others' deliveries being swept.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=None,
                            help="Seconds a delivery must have been left received "
                                 "(default: LMS_BRIDGE_SWEEP_AFTER_SECONDS).")
        parser.add_argument("--here", action="store_true", help="Process them in this process, not on Celery.")
        parser.add_argument("--progress", action="store_true", help="Print the progress of deliveries in progress.")

    def handle(self, *args, **options):
        enqueue = enqueue_chunk = None
        if celery_configured() and not options["here"]:
            # pylint: disable=import-outside-toplevel
            from lms_bridge.tasks import enqueue_chunk, enqueue_delivery

            enqueue = enqueue_delivery
        waiting = stranded(options["older_than"]).count()
        self.stdout.write(f"{waiting} delivery(ies) to {'queue' if enqueue else 'process here'}")
        report = sweep(options["older_than"], enqueue=enqueue, enqueue_chunk=enqueue_chunk)
        self.stdout.write(f"queued: {report.queued}, processed here: {report.processed}, "
                          f"chunks resumed: {report.chunks}, could not be queued: {report.failed_to_queue}")
        if options["progress"]:
            for delivery in WebhookDelivery.objects.filter(status=DeliveryStatus.PROCESSING).order_by("received_at"):
                counts = progress(delivery)
                outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())
                                     if k not in ("total", "done", "pending"))
                self.stdout.write(f"delivery {delivery.uuid}: {counts['done']} of {counts['total']} pairs done"
                                  f" ({outcomes or 'none yet'})")
        if report.failed_to_queue:
            self.stderr.write("The broker did not take every delivery: run this again once it is back.")
