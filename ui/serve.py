"""Serve the page: ``/ui/`` from ``ui/static`` and ``/`` (BentoML's Swagger page, which asks
third-party hosts for resources) redirected to it; the API documentation is ``/ui/docs.html``,
a vendored Swagger UI reading the service's own ``/docs.json``.

Routes only, no middleware: the prediction routes come first in the app's router and BentoML's
traffic hook sends ``/api/v1/*`` past the router altogether, so the page costs them nothing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/ui"
# The browser refuses any request to another host, should a library ever try one. Vega compiles its
# expressions with Function() (hence 'unsafe-eval'); Vega and Swagger UI set inline styles.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)


class PageFiles(StaticFiles):
    """Static files with the page's Content-Security-Policy; revalidated on every load (ETag), so
    a new release of the page is never mixed with a cached old module."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


async def _to_page(_: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


def mount(app: FastAPI, directory: Path = STATIC_DIR) -> None:
    """Add the page to ``app``: call it after the API routes, so they stay first in the router."""
    app.add_route("/", _to_page, include_in_schema=False)
    app.add_route(PREFIX, _to_page, include_in_schema=False)
    app.mount(PREFIX, PageFiles(directory=directory, html=True), name="ui")
