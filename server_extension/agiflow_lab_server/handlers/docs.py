from __future__ import annotations

from importlib import resources

from tornado.web import authenticated

from agiflow_lab.onboarding import GETTING_STARTED
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.openapi import build_document
from agiflow_lab_server.routing import operation

DOCS_HTML = (resources.files("agiflow_lab_server") / "static" / "docs.html").read_text()
GETTING_STARTED_NOTEBOOK = GETTING_STARTED.read_bytes()  # read once: no file I/O on the event loop per request


class OpenApiHandler(AgiflowHandler):
    auth_resource = "agiflow:docs"

    @operation("This OpenAPI 3.1 document", tags=("meta",))
    @authenticated
    @authorized
    async def get(self) -> None:
        if "agiflow_openapi" not in self.settings:
            self.settings["agiflow_openapi"] = build_document(self.settings["agiflow_routes"], self.base_url)
        self.finish_json(self.settings["agiflow_openapi"])


class DocsHandler(AgiflowHandler):
    """A readable API page rendered in the browser from openapi.json, with no CDN."""

    auth_resource = "agiflow:docs"

    @operation("Human-readable API reference", tags=("meta",), content_type="text/html")
    @authenticated
    @authorized
    async def get(self) -> None:
        self.finish(DOCS_HTML, set_content_type="text/html; charset=utf-8")  # APIHandler would say JSON


class GettingStartedHandler(AgiflowHandler):
    """The "Getting started" notebook, for the launcher to save into the user's folder and open."""

    auth_resource = "agiflow:docs"

    @operation("The Getting started notebook (nbformat 4)", tags=("meta",), content_type="application/x-ipynb+json")
    @authenticated
    @authorized
    async def get(self) -> None:
        self.finish(GETTING_STARTED_NOTEBOOK, set_content_type="application/x-ipynb+json")
