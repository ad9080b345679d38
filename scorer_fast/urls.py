from django.conf import settings
from django.contrib import admin
from django.urls import path, re_path
from django.views.static import serve

from scorer_fast.api import api

# ADMIN_ENABLED=off (public deployments) leaves the admin and its assets unrouted.
admin_urls = [
    path("admin/", admin.site.urls),
    # Admin assets, collected by `collectstatic`; small enough to serve from the app (no separate web server).
    re_path(r"^static/(?P<path>.*)$", serve, {"document_root": settings.STATIC_ROOT}),
]
urlpatterns = [*(admin_urls if settings.ADMIN_ENABLED else []), path("", api.urls)]

handler400 = "scorer_fast.api.bad_request"
handler403 = "scorer_fast.api.permission_denied"
handler404 = "scorer_fast.api.not_found"
handler500 = "scorer_fast.api.server_error"
