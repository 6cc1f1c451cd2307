"""The interactive API reference at ``/docs``, served whole from this process.

Swagger UI's files come from the ``fastapi-offline`` package (it ships them, kept current,
for exactly this), so the reference works on a network with no way out, and the page's
Content-Security-Policy can be as strict as the web UI's: no inline script (ours is a
file of its own), no origin but this one.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
# ``files()`` of a plain installed package is a real directory: StaticFiles serves it.
SWAGGER_UI = Path(str(files("fastapi_offline") / "static"))
INIT_SCRIPT = "/static/js/apidocs.js"
# Swagger UI sets inline styles and shows data: images (its icons); scripts and the schema
# come from this origin only.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'self'; object-src 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} — API reference</title>
  <link rel="icon" href="{assets}/favicon.png">
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi}"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{init}"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Adds ``/docs`` and its assets; the app is created with ``docs_url=None`` so FastAPI's
    own page (which loads Swagger UI from a CDN) is not served."""
    page = PAGE.format(
        title=escape(app.title),
        assets=ASSETS,
        openapi=escape(app.openapi_url or "/openapi.json"),
        init=INIT_SCRIPT,
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": CSP,
                "Referrer-Policy": "same-origin",
                "Cache-Control": "no-store",
            },
        )

    app.mount(ASSETS, StaticFiles(directory=SWAGGER_UI), name="apidocs")
