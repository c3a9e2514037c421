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

import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlparse

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from streetwatch.cases.export import clock_offset
from streetwatch.cases.store import CaseStore
from streetwatch.detector.codes import load_code_profile
from streetwatch.detector.errors import StoreError, StreetwatchError
from streetwatch.review import accounts, box_routes, platform_api, routes, source_routes
from streetwatch.review.actions import Conflict, NotFound
from streetwatch.review.i18n import LANGUAGES, Msg, catalogue
from streetwatch.review.inputs import InvalidInput
from streetwatch.review.settings import ReviewSettings
from streetwatch.review.web import COOKIE, AuthRequired, Forbidden, error_page, error_response, message_of, wants_html

HERE = Path(__file__).resolve().parent


def _csp(settings: ReviewSettings) -> str:
    img = "'self' data:"
    if settings.tile_url:
        tiles = urlparse(settings.tile_url.replace("{", "").replace("}", ""))
        img += f" {tiles.scheme}://{tiles.netloc}"
    return (f"default-src 'self'; img-src {img}; script-src 'self'; style-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@pass_context
def _gettext(ctx, message: str) -> str:
    return ctx["i18n"].gettext(message)


@pass_context
def _ngettext(ctx, singular: str, plural: str, n: int) -> str:
    return ctx["i18n"].ngettext(singular, plural, n)


def create_app(db_url: str, evidence_dir: Path, settings: ReviewSettings | None = None,
               now: Callable[[], datetime] | None = None) -> FastAPI:
    """The review app on the case store at `db_url` (migrated on start) and the evidence folder.

    Example:
        >>> app = create_app("sqlite:///streetwatch-data/streetwatch.db", Path("streetwatch-data/evidence"))
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    settings = settings or ReviewSettings()
    app = FastAPI(title=settings.title, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = CaseStore(db_url)
    app.state.evidence_dir = Path(evidence_dir).resolve()
    app.state.settings = settings
    # the code scheme of every page, export, API answer and work order (docs/codes.md): a bad table stops the start
    app.state.codes = load_code_profile(settings.codes)
    app.state.clock = now or (lambda: datetime.now(timezone.utc))
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = app.state.templates.env
    env.globals["quote"] = quote
    env.globals["clock"] = clock_offset
    # `_()` and `{% trans %}` in a template: the catalogue of the page's language (its context's `i18n`)
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext=_gettext, ngettext=_ngettext, newstyle=True)  # type: ignore[attr-defined]
    for lang in LANGUAGES:  # compile every catalogue now: a broken .po stops the start, not a page
        catalogue(lang)
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
            response = error_page(request, 401, message_of(exc), link=("/login", Msg("Log in")))
        else:
            response = JSONResponse({"detail": str(exc)}, status_code=401)
        if exc.expired:
            response.delete_cookie(COOKIE, path="/")
        return response

    @app.exception_handler(StreetwatchError)
    async def on_refused(request: Request, exc: StreetwatchError) -> Response:
        """An action that cannot be done: 404 (no such case), 409 (changed by someone else), 422 (a field out of
        bounds), 503 (database), or 400."""
        status = (404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict)
                  else 422 if isinstance(exc, InvalidInput) else 503 if isinstance(exc, StoreError) else 400)
        match = re.match(r"^/cases/(\d+)", request.url.path)
        link = (f"/cases/{match.group(1)}", Msg("Reload the case")) if match else None
        return error_response(request, status, message_of(exc), link)

    @app.exception_handler(Forbidden)
    async def on_forbidden(request: Request, exc: Forbidden) -> Response:
        return error_response(request, 403, message_of(exc))

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(accounts.router)
    app.include_router(box_routes.router)  # before routes': its /cases/{id}/{action} would take /boxes
    app.include_router(source_routes.router)  # any frame of a source, with the same box editor
    app.include_router(routes.router)
    app.include_router(platform_api.router)  # the platform's status reports: signed, no log-in
    return app
