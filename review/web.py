"""What every page and action of the review app shares: who is logged in, the CSRF and origin checks,
the errors they raise and how an error is answered (HTML page or JSON).

`review.routes` and `review.accounts` build on these and `review.app` wires them into the FastAPI app;
none of them is imported here.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlparse

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData

from streetwatch.cases.status import CaseStatus
from streetwatch.cases.store import CaseStore
from streetwatch.review.i18n import LANG_COOKIE, LANGUAGES, N_, I18n, Msg
from streetwatch.review.users import Current, SessionExpired, resume_session

COOKIE = "sw_session"
LOGIN_CSRF_COOKIE = "sw_login_csrf"
FLASH = {  # keyed by the status an action leads to, or by the action; %(a)s and %(b)s are the numbers in the URL
    CaseStatus.CONFIRMED: N_("Case %(a)s confirmed."), CaseStatus.REJECTED: N_("Case %(a)s rejected."),
    CaseStatus.DISPATCHED: N_("Case %(a)s dispatched."), CaseStatus.RESOLVED: N_("Case %(a)s marked resolved."),
    CaseStatus.MERGED: N_("Case %(b)s merged into case %(a)s."),
    "split": N_("Sightings moved from case %(a)s to new case %(b)s."),
    "pushed": N_("Case %(a)s queued for the bureau's system."),
    "box-drawn": N_("Box saved: the model will learn it."), "box-relabelled": N_("Class of the box changed."),
    "box-wrong": N_("Box marked wrong: it will be background."),
    "user": N_("User %(a)s saved."), "queue-empty": N_("Queue cleared: no more cases match these filters."),
}
_FLASH_RE = re.compile(r"^([a-z-]+)(?:-(\d+))?(?:-(\d+))?$")


class AuthRequired(Exception):
    def __init__(self, expired: bool) -> None:
        super().__init__(Msg("session expired; log in again") if expired else Msg("log in first"))
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


def client_ip(request: Request) -> str:
    """The client's address: the peer's, or, when the peer is one of `settings.trusted_proxies`, the
    nearest address in X-Forwarded-For that is not a trusted proxy. From anyone else the header is
    ignored: a client could write any address there and so escape the per-address log-in limit."""
    peer = request.client.host if request.client else ""
    trusted = request.app.state.settings.trusted_proxies
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):  # appended by each proxy in turn: the rightmost came from the nearest one
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # not written by a proxy of ours: nothing left of it can be trusted
        if not _within(hop, trusted):
            return hop
        peer = hop
    return peer


def _within(address: str, networks: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


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


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True  # non-browser clients send neither; the CSRF token still has to match
    return origin != "null" and urlparse(origin).netloc == request.headers.get("host", "")


async def checked(request: Request, cur: Current = Depends(current)) -> Current:
    """`current`, plus the CSRF check every state-changing request must pass."""
    if not same_origin(request):
        raise Forbidden(Msg("this request came from another site (Origin check failed)"))
    token = request.headers.get("x-csrf-token", "")
    if not token and "form" in request.headers.get("content-type", ""):
        token = str((await request.form()).get("csrf_token") or "")
    if not token or not hmac.compare_digest(token.encode(), cur.csrf_token.encode()):
        raise Forbidden(Msg("the form is missing its security token or it does not match your session "
                            "(CSRF check failed): reload the page and try again"))
    return cur


async def form_of(request: Request) -> FormData:
    """The request's form (parsed once; Starlette caches it), for sync routes that read lists or optional fields."""
    if "form" not in request.headers.get("content-type", ""):
        return FormData()
    return await request.form()


def admin_only(cur: Current = Depends(checked)) -> Current:
    if not cur.is_admin:
        raise Forbidden(Msg("only an admin may manage users"))
    return cur


def admin_view(cur: Current = Depends(current)) -> Current:
    if not cur.is_admin:
        raise Forbidden(Msg("only an admin may manage users"))
    return cur


def store_of(request: Request) -> CaseStore:
    return request.app.state.store


def i18n_of(request: Request) -> I18n:
    """The language the user picked (a cookie), else the app's default; the bureau's time zone."""
    settings = request.app.state.settings
    lang = request.cookies.get(LANG_COOKIE, "")
    return I18n(lang if lang in LANGUAGES else settings.language, settings.timezone)


def _flash(request: Request, i18n: I18n) -> str:
    match = _FLASH_RE.match(request.query_params.get("flash", ""))
    if not match or match.group(1) not in FLASH:
        return ""
    return i18n.gettext(FLASH[match.group(1)]) % {"a": match.group(2) or "", "b": match.group(3) or ""}


def _page(request: Request) -> str:
    """This page's path and query, for the language links to come back to."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def render(request: Request, name: str, cur: Current | None, status: int = 200, **ctx) -> Response:
    """A page from `templates/`, with what every page needs (user, settings, CSRF token, flash message,
    language and clock: `_()` in a template reads `i18n`)."""
    i18n = ctx.get("i18n") or i18n_of(request)
    ctx.update(cur=cur, settings=request.app.state.settings, csrf=cur.csrf_token if cur else "", i18n=i18n,
               when=i18n.when, flash=ctx.get("flash", _flash(request, i18n)), here=_page(request))
    return request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status)


def message_of(exc: BaseException) -> str:
    """The exception's message, still a `Msg` when it was raised with one (str(exc) would lose that)."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)


def error_page(request: Request, status: int, message: str, link: tuple[str, str] | None = None) -> HTMLResponse:
    """`message` (and the link's label) in the user's language when they are `Msg`s."""
    i18n = i18n_of(request)
    link = (link[0], i18n.msg(link[1])) if link else None
    return request.app.state.templates.TemplateResponse(
        request, "error.html", {"status": status, "message": i18n.msg(message), "link": link, "cur": None,
                                "settings": request.app.state.settings, "i18n": i18n, "when": i18n.when,
                                "here": _page(request)}, status_code=status)


def error_response(request: Request, status: int, message: str, link: tuple[str, str] | None = None) -> Response:
    if wants_html(request):
        return error_page(request, status, message, link)
    return JSONResponse({"detail": message}, status_code=status)
