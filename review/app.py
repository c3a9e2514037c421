"""The review web app: `create_app(db_url, evidence_dir, settings)` returns a FastAPI app on the case store.

Server-rendered (Jinja2) pages with a small hand-written script for keyboard triage; everything is
served by the app itself (no CDN, no online map tiles unless configured). Security at the edge:

- log-in with scrypt-hashed passwords, rate-limited per account and per address;
- a session cookie (HttpOnly, SameSite=Lax, Secure when configured) whose token the database
  stores only hashed, with an idle and an absolute expiry;
- a CSRF token on every POST (form field `csrf_token` or header `X-CSRF-Token`), plus an Origin check;
- evidence only through `/evidence/<path>`, refused unless it resolves to a file inside the evidence folder;
- a Content-Security-Policy with no inline script or style.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlparse

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from detector.errors import StoreError, StreetwatchError
from detector.store import CaseStore
from review.actions import Conflict, NotFound
from review.settings import ReviewSettings
from review.users import Current, SessionExpired, resume_session

HERE = Path(__file__).resolve().parent
COOKIE = "sw_session"
LOGIN_CSRF_COOKIE = "sw_login_csrf"


class AuthRequired(Exception):
    def __init__(self, expired: bool) -> None:
        super().__init__("session expired; log in again" if expired else "log in first")
        self.expired = expired


class Forbidden(Exception):
    """CSRF failure or a role that may not do this (HTTP 403)."""


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or request.url.path.startswith("/api/")


def safe_next(target: str | None) -> str:
    """Only same-site paths: no scheme, no host, no `//` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/cases"
    return target


def clock(request: Request) -> datetime:
    return request.app.state.clock()


def current(request: Request) -> Current:
    """The logged-in user, or AuthRequired (handled as a redirect to /login or a 401)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise AuthRequired(expired=False)
    state = request.app.state
    expired = False
    with state.store.sessions.begin() as ses:
        try:
            cur = resume_session(ses, token, idle_s=state.settings.session_idle_s, now=clock(request))
        except SessionExpired:  # caught inside the transaction so the dead session row is deleted
            cur, expired = None, True
    if cur is None:
        raise AuthRequired(expired=expired)
    return cur


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True  # non-browser clients send neither; the CSRF token still has to match
    return origin != "null" and urlparse(origin).netloc == request.headers.get("host", "")


async def checked(request: Request, cur: Current = Depends(current)) -> Current:
    """`current`, plus the CSRF check every state-changing request must pass."""
    if not _same_origin(request):
        raise Forbidden("this request came from another site (Origin check failed)")
    token = request.headers.get("x-csrf-token", "")
    if not token and "form" in request.headers.get("content-type", ""):
        token = str((await request.form()).get("csrf_token") or "")
    if not token or not hmac.compare_digest(token.encode(), cur.csrf_token.encode()):
        raise Forbidden("the form is missing its security token or it does not match your session "
                        "(CSRF check failed): reload the page and try again")
    return cur


async def form_of(request: Request) -> FormData:
    """The request's form (parsed once; Starlette caches it), for sync routes that read lists or optional fields."""
    if "form" not in request.headers.get("content-type", ""):
        return FormData()
    return await request.form()


def admin_only(cur: Current = Depends(checked)) -> Current:
    if not cur.is_admin:
        raise Forbidden("only an admin may manage users")
    return cur


def admin_view(cur: Current = Depends(current)) -> Current:
    if not cur.is_admin:
        raise Forbidden("only an admin may manage users")
    return cur


def _csp(settings: ReviewSettings) -> str:
    img = "'self' data:"
    if settings.tile_url:
        tiles = urlparse(settings.tile_url.replace("{", "").replace("}", ""))
        img += f" {tiles.scheme}://{tiles.netloc}"
    return (f"default-src 'self'; img-src {img}; script-src 'self'; style-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def create_app(db_url: str, evidence_dir: Path, settings: ReviewSettings | None = None,
               now: Callable[[], datetime] | None = None) -> FastAPI:
    """The review app on the case store at `db_url` (migrated on start) and the evidence folder.

    Example:
        >>> app = create_app("sqlite:///streetwatch-data/streetwatch.db", Path("streetwatch-data/evidence"))
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    from review import routes

    settings = settings or ReviewSettings()
    app = FastAPI(title=settings.title, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = CaseStore(db_url)
    app.state.evidence_dir = Path(evidence_dir).resolve()
    app.state.settings = settings
    app.state.clock = now or (lambda: datetime.now(timezone.utc))
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.templates.env.globals["quote"] = quote
    csp = _csp(settings)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(AuthRequired)
    async def on_auth(request: Request, exc: AuthRequired) -> Response:
        if wants_html(request) and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response: Response = RedirectResponse(
                f"/login?next={quote(target)}" + ("&expired=1" if exc.expired else ""), status_code=303)
        elif wants_html(request):
            response = error_page(request, 401, str(exc), link=("/login", "Log in"))
        else:
            response = JSONResponse({"detail": str(exc)}, status_code=401)
        if exc.expired:
            response.delete_cookie(COOKIE, path="/")
        return response

    @app.exception_handler(StreetwatchError)
    async def on_refused(request: Request, exc: StreetwatchError) -> Response:
        """An action that cannot be done: 404 (no such case), 409 (changed by someone else), 503 (database), or 400."""
        status = (404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict)
                  else 503 if isinstance(exc, StoreError) else 400)
        match = re.match(r"^/cases/(\d+)", request.url.path)
        link = (f"/cases/{match.group(1)}", "Reload the case") if match else None
        return error_response(request, status, str(exc), link)

    @app.exception_handler(Forbidden)
    async def on_forbidden(request: Request, exc: Forbidden) -> Response:
        return error_response(request, 403, str(exc))

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(routes.router)
    return app


def error_page(request: Request, status: int, message: str, link: tuple[str, str] | None = None) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message, "link": link, "cur": None,
                                "settings": request.app.state.settings}, status_code=status)


def error_response(request: Request, status: int, message: str, link: tuple[str, str] | None = None) -> Response:
    if wants_html(request):
        return error_page(request, status, message, link)
    return JSONResponse({"detail": message}, status_code=status)
