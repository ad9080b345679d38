"""The support admin's screenshots in docs/admin/, taken in headless Chromium at 1280×800 against the demo.

Start the demo first (`DEMO_ADMIN=on PORT=8610 scripts/serve`), then: `python -m demo.screenshots --base
http://127.0.0.1:8610`. It logs in as the demo's `demo-admin` through a session it writes itself, passed to
Chromium by a loopback proxy that adds the session cookie (Chromium's --screenshot takes no cookie). The low
score gets an expired, an unweighted and two newer stamps first, so every kind of reason shows; the rescore
screenshot is the score page after the page's own Recalculate button was posted."""

import argparse
import http.client
import http.cookies
import os
import re
import subprocess
import tempfile
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import django

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,800",
]
PASSING, LOW, DUPLICATE = "0x" + "d" * 40, "0x" + "e" * 40, "0x" + "f" * 40


class CookieProxy(BaseHTTPRequestHandler):
    """Forwards GETs to the demo server with the staff session's cookies."""

    upstream: tuple[str, int] = ("127.0.0.1", 8000)
    cookies: dict[str, str] = {}

    def do_GET(self) -> None:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in ("cookie", "host")}
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        headers["Host"] = "{}:{}".format(*self.upstream)
        connection.request("GET", self.path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length", "set-cookie"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def staff_session() -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    user = User.objects.get(username="demo-admin")  # created by DEMO_ADMIN=on scripts/serve
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key
    return session.session_key


def give_the_low_score_every_reason() -> int:
    """An expired and an unweighted stamp, scored; then two weighted stamps the last scoring has not seen."""
    from demo.issuer import demo_issuer_jwk
    from demo.management.commands.seed_demo import DEMO_COMMUNITY
    from demo.signing import issue_stamp
    from scorer_fast import models
    from scorer_fast.services import use_cases

    community = models.Community.objects.get(name=DEMO_COMMUNITY)
    now = datetime.now(UTC).replace(microsecond=0)

    def hold(provider: str, issued: datetime, expires: datetime) -> None:
        credential = issue_stamp(
            jwk=demo_issuer_jwk(),
            address=LOW,
            provider=provider,
            nullifiers=[f"v0:{provider}:{LOW}:screenshots"],
            issued=issued,
            expires=expires,
        )
        models.CeramicCache.objects.filter(address=LOW, provider=provider).delete()
        models.CeramicCache.objects.create(
            address=LOW,
            provider=provider,
            stamp=credential,
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
            type=1,
            compose_db_save_status="",
            compose_db_stream_id="",
            proof_value=credential["proof"].get("proofValue", "")[:256],
            issuance_date=issued,
            expiration_date=expires,
        )

    hold("Ens", now - timedelta(days=95), now - timedelta(days=5))
    hold("Twitter", now - timedelta(days=2), now + timedelta(days=88))
    use_cases.internal_score(scorer_id=community.id, raw_address=LOW)
    hold("BinanceBABT2", now, now + timedelta(days=90))
    hold("HolonymGovIdProvider", now, now + timedelta(days=90))
    return models.Score.objects.get(passport__address=LOW, passport__community=community).pk


def score_pk(address: str) -> int:
    from scorer_fast import models

    return models.Score.objects.get(passport__address=address).pk


def press_recalculate(upstream: tuple[str, int], cookies: dict[str, str], pk: int) -> dict[str, str]:
    """POST the score page's own button (with its CSRF token); the cookies then carry the result message."""
    page = f"/admin/scorer_fast/score/{pk}/change/"
    connection = http.client.HTTPConnection(*upstream, timeout=60)
    connection.request("GET", page, headers={"Cookie": f"sessionid={cookies['sessionid']}"})
    response = connection.getresponse()
    html = response.read().decode()
    jar = http.cookies.SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    csrf_cookie = jar["csrftoken"].value
    form = re.search(r'action="([^"]+/recalculate/)">.*?name="csrfmiddlewaretoken" value="([^"]+)"', html, re.S)
    assert form, "no Recalculate button on the score page"
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": form.group(2)})
    origin = "http://{}:{}".format(*upstream)
    connection.request(
        "POST",
        form.group(1),
        body=body,
        headers={
            "Cookie": f"sessionid={cookies['sessionid']}; csrftoken={csrf_cookie}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": origin + page,
            "Origin": origin,
        },
    )
    response = connection.getresponse()
    response.read()
    assert response.status == 302, response.status
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {**cookies, **({"messages": jar["messages"].value} if "messages" in jar else {})}


def shoot(proxy: str, path: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            ["/usr/bin/chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", proxy + path],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(f"{out}  ←  {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000", help="the running demo (scripts/serve)")
    parser.add_argument("--out", type=Path, default=Path("docs/admin"))
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
    os.environ.setdefault("SCORER_ENV", "development")
    django.setup()

    base = urllib.parse.urlparse(args.base)
    upstream = (base.hostname or "127.0.0.1", base.port or 80)
    CookieProxy.upstream = upstream
    CookieProxy.cookies = {"sessionid": staff_session()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), CookieProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = f"http://127.0.0.1:{server.server_address[1]}"
    args.out.mkdir(parents=True, exist_ok=True)

    low = give_the_low_score_every_reason()
    shoot(proxy, "/admin/", args.out / "index.png")
    shoot(proxy, f"/admin/address/?address={DUPLICATE}", args.out / "address-search.png")
    shoot(proxy, f"/admin/scorer_fast/score/{low}/change/", args.out / "low-score.png")
    shoot(proxy, f"/admin/scorer_fast/score/{score_pk(DUPLICATE)}/change/", args.out / "deduplicated-stamp.png")
    CookieProxy.cookies = press_recalculate(upstream, CookieProxy.cookies, low)
    shoot(proxy, f"/admin/scorer_fast/score/{low}/change/", args.out / "rescore.png")
    CookieProxy.cookies = {"sessionid": CookieProxy.cookies["sessionid"]}
    shoot(proxy, "/admin/scorer_fast/accountapikey/", args.out / "key-list.png")
    server.shutdown()


if __name__ == "__main__":
    main()
