"""The one place that renders errors: the envelope depends on the route family (decision 3)."""

from django.http import JsonResponse

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


def error_response(path: str, status: int, message: object) -> JsonResponse:
    return JsonResponse({error_key(path): message}, status=status)
