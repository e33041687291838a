"""Stand-in for openedx.core.djangoapps.user_api.accounts.signals: the retirement signals plugins connect to."""
from django.dispatch import Signal

# Sent by the LMS's retire_mailings step: user, email (the original), new_email (the retired one).
USER_RETIRE_MAILINGS = Signal()
# Sent by the LMS's final retirement step: user, retired_username, retired_email.
USER_RETIRE_LMS_CRITICAL = Signal()
# Sent by the LMS's retire_misc step (RETIRING_LMS_MISC), before the account's email is replaced: user.
USER_RETIRE_LMS_MISC = Signal()
