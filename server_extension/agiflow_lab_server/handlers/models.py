from __future__ import annotations

from tornado.web import authenticated

from agiflow_lab.authz.policy import EXECUTE
from agiflow_lab.providers.models import (
    Connection,
    ConnectionCreate,
    ConnectionList,
    ConnectionTest,
    ConnectionTestResult,
    ConnectionUpdate,
    PriceRow,
    PriceSet,
    PriceTable,
)
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation

TAGS = ("models",)


class ModelBase(AgiflowHandler):
    auth_resource = "agiflow:models"


class ConnectionsHandler(ModelBase):
    @operation("List model connections, the built-in echo first", response=ConnectionList, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.platform.models.list(project))

    @operation("Add a model connection; api_key is stored encrypted and never returned", body=ConnectionCreate,
               response=Connection, status=201, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        body = self.parse(ConnectionCreate)
        self.finish_json(await self.platform.models.create(self.actor, project, body), status=201)


class ConnectionHandler(ModelBase):
    @operation("Get a model connection", response=Connection, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        self.finish_json(await self.platform.models.get(project, name))

    @operation("Change a connection: omitted fields stay, null clears base_url, default_model or api_key",
               body=ConnectionUpdate, response=Connection, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def patch(self, project: str, name: str) -> None:
        body = self.parse(ConnectionUpdate)
        self.finish_json(await self.platform.models.update(self.actor, project, name, body))

    @operation("Delete a model connection", status=204, tags=TAGS)
    @authenticated
    @authorized
    async def delete(self, project: str, name: str) -> None:
        await self.platform.models.delete(self.actor, project, name)
        self.finish_json(None, status=204)


class ConnectionTestHandler(ModelBase):
    # A call spends the project's key and reaches the connection's host: editors (who run evaluations with
    # it anyway) and owners, not viewers.
    auth_actions = {"POST": EXECUTE}

    @operation("Make one small completion with the connection and report ok/error and latency",
               body=ConnectionTest, response=ConnectionTestResult, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        body = self.parse(ConnectionTest) if self.body else ConnectionTest()
        self.finish_json(await self.platform.models.test(project, name, body))


class PricesHandler(ModelBase):
    @operation("The effective price table: shipped prices overlaid with the project's own", response=PriceTable,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.platform.models.price_table(project))


class PriceHandler(ModelBase):
    @operation("Set the project's own price for a model (USD per million tokens)", body=PriceSet, response=PriceRow,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def put(self, project: str, model: str) -> None:
        body = self.parse(PriceSet)
        self.finish_json(await self.platform.models.set_price(self.actor, project, model, body))

    @operation("Remove the project's price for a model (the shipped price applies again)", status=204, tags=TAGS)
    @authenticated
    @authorized
    async def delete(self, project: str, model: str) -> None:
        await self.platform.models.delete_price(self.actor, project, model)
        self.finish_json(None, status=204)
