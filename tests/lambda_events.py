"""HTTP requests as Lambda receives them: ALB target-group events (multi-value headers off and on) and API Gateway
REST (v1) and HTTP (v2) events, in the recorded shapes AWS documents. `seen_by_app` gives what the app behind an
HTTP server would see for the same request, since an ALB without multi-value headers keeps only the last value
of a repeated header or query key."""

import base64
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

SHAPES = ("alb", "alb-multi", "apigw-v1", "apigw-v2")
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/scorer-fast/6d0ecf831eec9f09"
# Headers every ALB / API Gateway request reaches the target with.
PROXY_HEADERS = [
    ("host", "api.scorer.example"),
    ("x-forwarded-for", "203.0.113.7"),
    ("x-forwarded-port", "443"),
    ("x-forwarded-proto", "https"),
    ("x-amzn-trace-id", "Root=1-5bdb40ca-556d8b0c50dc66f0511bf520"),
]


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)  # in order, names as the client spelled them
    body: bytes = b""
    base64_body: bool = False

    def all_headers(self) -> list[tuple[str, str]]:
        extra = [("content-type", "application/json"), ("content-length", str(len(self.body)))] if self.body else []
        return PROXY_HEADERS + extra + self.headers

    def seen_by_app(self, shape: str) -> "HttpRequest":
        if shape != "alb":
            return self
        return HttpRequest(
            self.method,
            self.path,
            list(_last_values(self.query).items()),
            [(name, value) for name, value in _last_values(self.headers).items()],
            self.body,
            self.base64_body,
        )


def _last_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in pairs:
        values.pop(name, None)
        values[name] = value
    return values


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _body(request: HttpRequest) -> tuple[str, bool]:
    if request.base64_body:
        return base64.b64encode(request.body).decode(), True
    return request.body.decode(), False


def event(request: HttpRequest, shape: str) -> dict:
    body, encoded = _body(request)
    headers = [(name.lower(), value) for name, value in request.all_headers()]
    if shape in ("alb", "alb-multi"):
        # The ALB passes query keys and values as the client encoded them.
        query = [(quote(key, safe=""), quote(value, safe="")) for key, value in request.query]
        base = {
            "requestContext": {"elb": {"targetGroupArn": TARGET_GROUP}},
            "httpMethod": request.method,
            "path": request.path,
            "body": body,
            "isBase64Encoded": encoded,
        }
        if shape == "alb":
            return {**base, "queryStringParameters": _last_values(query), "headers": _last_values(headers)}
        return {**base, "multiValueQueryStringParameters": _grouped(query), "multiValueHeaders": _grouped(headers)}
    if shape == "apigw-v1":
        raw_headers = request.all_headers()  # REST APIs keep the client's spelling of header names
        return {
            "resource": "/{proxy+}",
            "path": request.path,
            "httpMethod": request.method,
            "headers": _last_values(raw_headers),
            "multiValueHeaders": _grouped(raw_headers),
            "queryStringParameters": _last_values(request.query) or None,
            "multiValueQueryStringParameters": _grouped(request.query) or None,
            "pathParameters": {"proxy": request.path.lstrip("/")},
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/{proxy+}",
                "httpMethod": request.method,
                "path": "/prod" + request.path,
                "stage": "prod",
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
                "accountId": "123456789012",
                "apiId": "1234567890",
            },
            "body": body or None,
            "isBase64Encoded": encoded,
        }
    if shape == "apigw-v2":
        grouped = _grouped(headers)
        return {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": request.path,
            "rawQueryString": urlencode(request.query),
            "headers": {name: ",".join(values) for name, values in grouped.items()},
            "queryStringParameters": {k: ",".join(v) for k, v in _grouped(request.query).items()} or None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api-id",
                "domainName": "api.scorer.example",
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.7",
                    "userAgent": "curl/8.5.0",
                },
                "requestId": "JKJaXmPLvHcESHA=",
                "routeKey": "$default",
                "stage": "$default",
                "time": "28/Nov/2026:11:30:00 +0000",
                "timeEpoch": 1795865400000,
            },
            "body": body or None,
            "isBase64Encoded": encoded,
        }
    raise ValueError(shape)


def response_headers(response: dict) -> dict[str, str]:
    """A Lambda response's headers, lower-cased names, repeated values joined."""
    if "multiValueHeaders" in response:
        return {name.lower(): ",".join(values) for name, values in response["multiValueHeaders"].items()}
    return {name.lower(): value for name, value in response["headers"].items()}


def response_body(response: dict) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
