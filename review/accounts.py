"""Log-in, log-out and the admins' user management pages of the review app."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from streetwatch.review import inputs
from streetwatch.review.i18n import LANG_COOKIE, LANGUAGES, Msg
from streetwatch.review.users import (
    Current,
    LoginLocked,
    LoginRefused,
    UserError,
    add_user,
    end_session,
    list_users,
    log_in,
    set_disabled,
)
from streetwatch.review.web import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    admin_only,
    admin_view,
    checked,
    client_ip,
    clock,
    error_response,
    form_of,
    message_of,
    render,
    safe_next,
    same_origin,
    store_of,
    wants_json,
)

router = APIRouter()


def _login_form(request: Request, next_: str, status: int = 200, error: str = "", expired: bool = False,
                retry_after: int | None = None) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", None, status, login_csrf=token, next=safe_next(next_), error=error,
                      expired=expired)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=request.app.state.settings.secure_cookies)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/cases", expired: int = 0) -> Response:  # noqa: A002
    return _login_form(request, next[:inputs.MAX_TEXT], expired=bool(expired))


@router.post("/login")
def login(request: Request, form: FormData = Depends(form_of)) -> Response:
    csrf_token = inputs.text(form, "csrf_token", limit=inputs.MAX_LINE, one_line=True)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()) or not same_origin(request):
        return error_response(request, 403, Msg("the log-in form is out of date or did not come from this site "
                                                "(CSRF check failed): reload the page and try again"),
                              ("/login", Msg("Log in")))
    username = inputs.text(form, "username", limit=inputs.MAX_USERNAME, label="user name", one_line=True).strip()
    password = inputs.text(form, "password", limit=inputs.MAX_PASSWORD, secret=True)
    next_ = inputs.text(form, "next", limit=inputs.MAX_TEXT, one_line=True) or "/cases"
    settings = request.app.state.settings
    error: LoginRefused | LoginLocked | None = None
    with store_of(request).sessions.begin() as ses:
        try:  # caught inside the transaction so that the failed attempt is recorded
            new = log_in(ses, username, password, client_ip(request), max_failures=settings.login_max_failures,
                         max_address_failures=settings.login_max_failures_per_address,
                         window_s=settings.login_window_s, max_age_s=settings.session_max_s, now=clock(request))
        except (LoginRefused, LoginLocked) as exc:
            error = exc
    if error is not None:
        status = 429 if isinstance(error, LoginLocked) else 401
        retry = error.retry_after_s if isinstance(error, LoginLocked) else None
        if wants_json(request):
            return JSONResponse({"detail": str(error)}, status_code=status,
                                headers={"Retry-After": str(retry)} if retry else None)
        return _login_form(request, next_, status, error=message_of(error), retry_after=retry)
    response: Response = (JSONResponse({"csrf_token": new.csrf_token}) if wants_json(request)
                          else RedirectResponse(safe_next(next_), status_code=303))
    response.set_cookie(COOKIE, new.token, httponly=True, samesite="lax", path="/", max_age=settings.session_max_s,
                        secure=settings.secure_cookies)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.get("/lang/{code}")
def choose_language(request: Request, code: str, next: str = "/cases") -> Response:  # noqa: A002
    """Show the pages in `code` from now on (a cookie, so it works before logging in too)."""
    if code not in LANGUAGES:
        return error_response(request, 404, Msg("no language %(code)r (choose %(known)s)", code=code[:20],
                                                known=", ".join(LANGUAGES)))
    response = RedirectResponse(safe_next(next[:inputs.MAX_TEXT]), status_code=303)
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86_400, httponly=True, samesite="lax", path="/",
                        secure=request.app.state.settings.secure_cookies)
    return response


@router.post("/logout")
def logout(request: Request, cur: Current = Depends(checked)) -> Response:
    with store_of(request).sessions.begin() as ses:
        end_session(ses, cur.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/admin/users")
def users_page(request: Request, cur: Current = Depends(admin_view)) -> Response:
    with store_of(request).session() as ses:
        return render(request, "users.html", cur, users=list_users(ses))


@router.post("/admin/users")
def users_add(request: Request, cur: Current = Depends(admin_only),
              form: FormData = Depends(form_of)) -> Response:
    username = inputs.text(form, "username", limit=inputs.MAX_USERNAME, label="user name", one_line=True).strip()
    password = inputs.text(form, "password", limit=inputs.MAX_PASSWORD, secret=True)
    role = inputs.text(form, "role", limit=inputs.MAX_LINE, one_line=True) or "analyst"
    with store_of(request).sessions.begin() as ses:
        user = add_user(ses, username, password, role, actor=cur.username)
        payload = {"username": user.username, "role": user.role}
    if wants_json(request):
        return JSONResponse(payload, status_code=201)
    return RedirectResponse(f"/admin/users?flash=user-{user.id}", status_code=303)


@router.post("/admin/users/{username}/{what}")
def users_toggle(request: Request, username: str, what: str, cur: Current = Depends(admin_only)) -> Response:
    if what not in ("disable", "enable"):
        return error_response(request, 404, f"no action {what[:40]!r}")
    inputs.text({"user name": username}, "user name", limit=inputs.MAX_USERNAME, one_line=True)
    if username == cur.username and what == "disable":
        raise UserError("you cannot disable your own account (ask another admin)")
    with store_of(request).sessions.begin() as ses:
        set_disabled(ses, username, what == "disable", actor=cur.username)
    if wants_json(request):
        return JSONResponse({"username": username, "disabled": what == "disable"})
    return RedirectResponse("/admin/users", status_code=303)
