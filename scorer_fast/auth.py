"""ninja authenticators: they find the credential in the request and hand it to the services."""

from django.http import HttpRequest
from ninja.security import APIKeyHeader, HttpBearer

from scorer_fast.errors import InvalidApiKey, Unauthorized
from scorer_fast.services.api_keys import ApiKeyPrincipal, api_key_authenticate
from scorer_fast.services.tokens import address_from_token


class PartnerApiKey(APIKeyHeader):
    """`X-API-Key: <key>`, else `Authorization: <any word> <key>`."""

    param_name = "X-API-Key"

    def _get_key(self, request: HttpRequest) -> str | None:
        key = request.headers.get("X-API-Key")
        if not key:
            parts = request.headers.get("Authorization", "").split()
            key = parts[1] if len(parts) == 2 else None
        return key

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKeyPrincipal:
        principal = api_key_authenticate(key)
        if principal is None:
            raise InvalidApiKey()
        return principal


class PassportJwt(HttpBearer):
    """`Authorization: Bearer <jwt>`; the principal is the token's lower-cased address."""

    def __call__(self, request: HttpRequest) -> str:
        value = request.headers.get("Authorization", "")
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> str:
        return address_from_token(token)


class PartnerXApiKey(PartnerApiKey):
    """`X-API-Key` only: POST /registry/submit-passport's Lambda never reads `Authorization`."""

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.headers.get("X-API-Key") or None
