"""Stand-in for the LMS's user-related code (common/djangoapps/student/models/user.py)."""
import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from .course_enrollment import (
    ALLOWEDTOENROLL_TO_ENROLLED,
    CourseEnrollment,
    CourseEnrollmentAllowed,
    ManualEnrollmentAudit,
)

__all__ = ["UserProfile", "is_email_retired", "retired_email_for"]

User = get_user_model()


class UserProfile(models.Model):
    """The learner's profile (the LMS reads ``user.profile.name`` in its enrollment events)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, unique=True, related_name="profile", on_delete=models.CASCADE)
    name = models.CharField(blank=True, max_length=255, db_index=True)

    class Meta:
        app_label = "student"
        db_table = "auth_userprofile"

    def __str__(self):
        return f"profile of user {self.user_id}"


@receiver(post_save, sender=User, dispatch_uid="standin_user_profile")
def create_profile(sender, instance, created, **kwargs):  # pylint: disable=unused-argument
    """
    Give every new account a profile, as the LMS's registration does; a test
    deletes it to model an account that has none (old or hand-made data).
    """
    if created and not kwargs.get("raw"):
        UserProfile.objects.get_or_create(user=instance, defaults={"name": instance.get_full_name()})


def retired_email_for(email, salt=None):
    """The address a retired account's email is replaced with (hashed, as the LMS does)."""
    salt = salt if salt is not None else getattr(settings, "RETIRED_USER_SALTS", ["sandbox-salt"])[-1]
    digest = hashlib.sha1((salt + email.lower()).encode("utf-8")).hexdigest()
    return getattr(settings, "RETIRED_EMAIL_FMT", "retired__user_{}@retired.invalid").format(digest)


def is_email_retired(email):
    """True when an account with this email was retired."""
    salts = getattr(settings, "RETIRED_USER_SALTS", ["sandbox-salt"])
    return User.objects.filter(email__in=[retired_email_for(email, salt) for salt in salts]).exists()


@receiver(pre_save, sender=User, dispatch_uid="standin_user_pre_save")
def user_pre_save_callback(sender, instance, **kwargs):  # pylint: disable=unused-argument
    """Remember which of is_active and email change, for the post_save receiver."""
    changed = set()
    if instance.pk:
        old = sender.objects.filter(pk=instance.pk).values("is_active", "email").first()
        if old:
            changed = {name for name in ("is_active", "email") if old[name] != getattr(instance, name)}
    instance._changed_fields = changed  # pylint: disable=protected-access


@receiver(post_save, sender=User, dispatch_uid="standin_user_post_save")
def user_post_save_callback(sender, instance, **kwargs):  # pylint: disable=unused-argument
    """Auto-enroll from allowed records when is_active or email changed and the user is active."""
    changed = getattr(instance, "_changed_fields", set())
    if not changed or not instance.is_active:
        return
    for allowed in CourseEnrollmentAllowed.for_user(instance).filter(auto_enroll=True):
        enrollment = CourseEnrollment.enroll(instance, allowed.course_id)
        audit = ManualEnrollmentAudit.get_manual_enrollment_by_email(instance.email)
        if audit is not None:
            ManualEnrollmentAudit.create_manual_enrollment_audit(
                audit.enrolled_by, instance.email, ALLOWEDTOENROLL_TO_ENROLLED, audit.reason, enrollment,
            )
