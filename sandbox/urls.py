"""URLs of the sandbox: the admin, plus every lms.djangoapp plugin's URLs (as the LMS mounts them)."""
from django.contrib import admin
from django.urls import path
from edx_django_utils.plugins import get_plugin_url_patterns

urlpatterns = [
    path("admin/", admin.site.urls),
    *get_plugin_url_patterns("lms.djangoapp"),
]
