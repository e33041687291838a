"""
Fill the sandbox with demo data and print how to use it.

Idempotent: running it again changes nothing but the admin password.
"""
import secrets

from common.djangoapps.course_modes.models import CourseMode
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from opaque_keys.edx.keys import CourseKey
from openedx.core.djangoapps.content.course_overviews.models import CourseOverview

COURSES = {
    "course-v1:edX+DemoX+Demo_Course": ("Demonstration Course", ("audit", "verified")),
    "course-v1:OpenedX+Bridge+2026": ("Bridging Open edX", ("audit",)),
}


class Command(BaseCommand):
    """Create the demo courses, learners and an admin account."""

    help = "Create the sandbox's courses, users and admin login."

    def add_arguments(self, parser):
        parser.add_argument("--admin-password", help="default: a new random one, printed")

    def handle(self, *args, **options):
        for course_id, (name, modes) in COURSES.items():
            key = CourseKey.from_string(course_id)
            CourseOverview.objects.update_or_create(id=key, defaults={"display_name": name})
            for slug in modes:
                CourseMode.objects.get_or_create(course_id=key, mode_slug=slug, defaults={"mode_display_name": slug})
        user_model = get_user_model()
        if not user_model.objects.filter(username="ada").exists():
            user_model.objects.create_user("ada", "ada@example.com", secrets.token_urlsafe(12), is_active=True)
        if not user_model.objects.filter(username="grace").exists():
            user_model.objects.create_user("grace", "grace@example.com", secrets.token_urlsafe(12), is_active=False)
        password = options.get("admin_password") or secrets.token_urlsafe(12)
        admin, _ = user_model.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        self.stdout.write("Sandbox ready.")
        self.stdout.write(f"  courses: {', '.join(COURSES)}")
        self.stdout.write("  learners: ada@example.com (active), grace@example.com (not yet active)")
        self.stdout.write(f"  admin login: admin / {password}")
