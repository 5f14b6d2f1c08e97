"""The OpenAPI 3.1 document, generated from the route table and the handlers' pydantic models."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from agiflow_lab import __version__
from agiflow_lab.errors import HTTP_ERRORS
from agiflow_lab_server.base import action_for
from agiflow_lab_server.routing import API_PREFIX, Route, operations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "examples": ["validation_failed"]},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}

# The statuses every operation may answer with; bodies (post, put, patch) may also be too large.
OPERATION_ERRORS = (400, 401, 403, 404, 409, 422)
BODY_ERRORS = (413,)


def _operation_id(verb: str, handler: type) -> str:
    """``get_VersionsHandler`` is both prompts' and datasets' versions: the module keeps ids unique."""
    return f"{verb}_{handler.__module__.rsplit('.', 1)[-1]}_{handler.__name__}"


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": HTTP_ERRORS[status].summary,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _schema_refs(routes: list[Route]) -> tuple[dict[tuple[Any, JsonSchemaMode], JsonSchemaValue], dict[str, Any]]:
    """Every body and response model's ``$ref`` as pydantic names it (``Page[Job]`` becomes ``Page_Job_``),
    and the schemas those refs point at: the refs are taken from the same call that names the schemas."""
    wanted: dict[tuple[Any, JsonSchemaMode], None] = {}
    for route in routes:
        for op in operations(route.handler).values():
            if op.body is not None:
                wanted[(op.body, "validation")] = None
            if op.response is not None:
                wanted[(op.response, "serialization")] = None
    refs, schemas = models_json_schema(list(wanted), ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schemas.get("$defs", {})
    _require_response_fields(wanted, refs, components)
    return refs, components


class _DefaultsRequired(GenerateJsonSchema):
    """Serialization schemas that list a field with a default as required, as every answer carries it."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return field.get("serialization_exclude_if") is None
        return super().field_is_required(field, total)


def _require_response_fields(
    wanted: dict[tuple[Any, JsonSchemaMode], None],
    refs: dict[tuple[Any, JsonSchemaMode], JsonSchemaValue],
    components: dict[str, Any],
) -> None:
    """Answers are ``model_dump_json()`` of their model, defaults included: a schema only answers use lists
    every field as required, so that clients need not check for a field the server always sends. A schema
    that a request body also uses (itself or nested) keeps pydantic's ``required``, where a field with a
    default may be left out: one schema for both, under one name (pydantic would otherwise split it into
    ``X-Input`` and ``X-Output``)."""
    in_bodies: set[str] = set()
    pending = [refs[key]["$ref"] for key in wanted if key[1] == "validation"]
    while pending:
        name = pending.pop().rsplit("/", 1)[-1]
        if name not in in_bodies:
            in_bodies.add(name)
            pending += re.findall(r'"\$ref": "([^"]+)"', json.dumps(components.get(name, {})))
    _, answered = models_json_schema(
        [key for key in wanted if key[1] == "serialization"],
        ref_template="#/components/schemas/{model}",
        schema_generator=_DefaultsRequired,
    )
    for name, schema in answered.get("$defs", {}).items():
        if name in components and name not in in_bodies and "required" in schema:
            components[name]["required"] = schema["required"]


def build_document(routes: list[Route], base_url: str) -> dict[str, Any]:
    refs, components = _schema_refs(routes)
    paths: dict[str, Any] = {}
    for route in routes:
        ops = operations(route.handler)
        if not ops:
            continue
        names = re.findall(r"\{(\w+)\}", route.template)
        item: dict[str, Any] = {}
        for verb, op in ops.items():
            entry: dict[str, Any] = {
                "summary": op.summary,
                "operationId": _operation_id(verb, route.handler),
                "tags": list(op.tags),
                "x-agiflow-resource": route.handler.auth_resource,
                "x-agiflow-action": action_for(route.handler, verb),
                "x-agiflow-websocket": op.websocket,
                "security": [{"jupyterToken": []}, {"apiKey": []}],
                "parameters": [
                    {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
                ],
                "responses": {str(status): _error_response(status) for status in OPERATION_ERRORS},
            }
            if op.query is not None:
                entry["parameters"] += _query_parameters(op.query)
            if op.body is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
                }
            if op.raw_body:
                entry["requestBody"] = {
                    "required": True,
                    "content": {media: {"schema": schema} for media, schema in op.raw_body.items()},
                }
            if verb in ("post", "put", "patch"):
                entry["responses"].update({str(status): _error_response(status) for status in BODY_ERRORS})
            ok: dict[str, Any] = {"description": "OK" if op.status != 204 else "No content"}
            if op.response is not None:
                ok["content"] = {op.content_type: {"schema": refs[(op.response, "serialization")]}}
            if op.raw_responses:
                ok["content"] = {media: {"schema": schema} for media, schema in op.raw_responses.items()}
            entry["responses"][str(op.status)] = ok
            item[verb] = entry
        paths[f"/{API_PREFIX}{route.template}"] = item
    components["Error"] = ERROR_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AGIFlow Lab API",
            "version": __version__,
            "description": "Prompts, evaluations, jobs and traces for LLM apps, served by the Jupyter server.",
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "jupyterToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`token <jupyter token>` or the Jupyter login cookie",
                },
                "apiKey": {"type": "http", "scheme": "bearer", "description": "A project API key `agf_…`"},
            },  # fmt: skip
        },
    }
