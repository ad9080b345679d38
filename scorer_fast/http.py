"""The one place that renders errors: the envelope depends on the route family (decision 3). The admin's pages
answer admin-styled HTML; every other path (the API) answers its JSON envelope."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

ADMIN_PREFIX = "/admin/"
ERROR_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Page not found", 500: "Server error"}

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "*",
    "Access-Control-Allow-Headers": (
        "Accept,Accept-Encoding,Authorization,Content-Type,Dnt,Origin,User-Agent,X-Csrftoken,X-Requested-With,X-Api-Key"
    ),
}


def error_key(path: str) -> str:
    """`/internal/...` answers `{"detail": ...}` (embed Lambdas, Django views); public routes `{"error": ...}`."""
    return "detail" if path.startswith("/internal/") else "error"


def json_text_response(text: str) -> HttpResponse:
    """A 200 whose JSON is already serialized, with the content type ninja's renderer gives its own 200s."""
    return HttpResponse(text, content_type="application/json; charset=utf-8")


def error_response(path: str, status: int, message: object) -> JsonResponse:
    return JsonResponse({error_key(path): message}, status=status)


def error_page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    """An error for any route: admin HTML under /admin/, the API's JSON envelope elsewhere."""
    if not (settings.ADMIN_ENABLED and request.path.startswith(ADMIN_PREFIX)):  # ADMIN_ENABLED=off: no admin pages
        return error_response(request.path, status, message)
    return HttpResponse(admin_error_html(request, status, message), status=status)


def admin_error_html(request: HttpRequest, status: int, message: str) -> str:
    from django.contrib import admin  # the admin is an optional app (ADMIN_ENABLED); load it only for its pages

    context: dict[str, object] = {"site_header": admin.site.site_header, "site_title": admin.site.site_title}
    if getattr(request, "user", None) is not None and status != 500:  # a 500 must not depend on the database
        context = admin.site.each_context(request)
    title = ERROR_TITLES.get(status, "Error")
    context.update({"title": title, "status": status, "message": message, "is_nav_sidebar_enabled": False})
    return render_to_string("admin/scorer_fast/error.html", context, request=request)
