"""The one place that renders errors: the envelope depends on the route family (decision 3)."""

from django.http import HttpResponse, JsonResponse

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
