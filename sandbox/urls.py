"""URLs of the sandbox: the admin, plus every lms.djangoapp plugin's URLs (as the LMS mounts them)."""
from django.apps import apps
from django.contrib import admin
from django.urls import path
from edx_django_utils.plugins import get_plugin_url_patterns
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class EmptyView(APIView):
    """The cheapest DRF endpoint: the benchmark's yardstick for the webhook's rate."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def post(self, request):
        return Response({})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("sandbox/empty/", EmptyView.as_view()),
    *get_plugin_url_patterns("lms.djangoapp"),
]
if apps.is_installed("drf_spectacular"):  # the test requirements have it; make run's do not
    from drf_spectacular.views import SpectacularAPIView  # pylint: disable=import-outside-toplevel

    urlpatterns.append(path("api/schema/", SpectacularAPIView.as_view(), name="schema"))
