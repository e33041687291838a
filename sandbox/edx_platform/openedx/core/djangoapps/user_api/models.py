"""Stand-in for the LMS's UserRetirementStatus (openedx/core/djangoapps/user_api/models.py)."""
from django.conf import settings
from django.db import models


class UserRetirementStatus(models.Model):
    """
    A retirement in progress: created when the learner asks for it, while the
    account still has its original email (the LMS replaces it at the last step).
    The LMS's row also tracks the pipeline's states; lms_bridge reads only these fields.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    original_username = models.CharField(max_length=150, db_index=True)
    original_email = models.EmailField(db_index=True)
    original_name = models.CharField(max_length=255, blank=True, db_index=True)
    retired_username = models.CharField(max_length=150, db_index=True)
    retired_email = models.EmailField(db_index=True)

    class Meta:
        app_label = "user_api"

    def __str__(self):
        return f"retirement of user {self.user_id}"
