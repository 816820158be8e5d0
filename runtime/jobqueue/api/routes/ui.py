"""GET /ui: the web dashboard, static files shipped in the package.

Plain HTML, CSS and JavaScript modules, no build step. Everything is read
once, at import. Every answer carries a strict Content-Security-Policy: the
page runs only its own scripts and styles, talks only to this origin (HTTP
and the WebSocket), and cannot be framed; with no inline script or style
allowed, tenant data that slipped into markup still could not run.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from jobqueue.api import http_errors

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Small files; a new version must show at once after an upgrade.
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _load() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("jobqueue.api").joinpath("ui")
    out: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            out[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return out


FILES = _load()


@router.get("/ui")
async def ui_root() -> Response:
    return RedirectResponse("/ui/", status_code=308)


@router.get("/ui/")
async def ui_index() -> Response:
    return ui_file("index.html")


@router.get("/ui/{name}")
async def ui_asset(name: str) -> Response:
    return ui_file(name)


def ui_file(name: str) -> Response:
    found = FILES.get(name)
    if found is None:
        raise http_errors.HttpError(404, "not_found", f"no file {name!r} in the web UI")
    body, media_type = found
    return Response(body, media_type=media_type, headers=HEADERS)
