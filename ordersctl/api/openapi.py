"""OpenAPI with apispec, without falcon-apispec (0.4.0 breaks on current Falcon + apispec).

Our helper reads each route's responders (``on_get`` ...) and the YAML block after ``---`` in their
docstrings; schemas come from the pydantic models.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from apispec import APISpec
from apispec.yaml_utils import load_operations_from_docstring
from pydantic import BaseModel

from ordersctl import __version__

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_FIELD = re.compile(r"{([^}:]+)(:[^}]*)?}")


def openapi_path(uri_template: str) -> str:
    """Falcon's ``/orders/{order_uid}`` (or ``{id:int}``) as an OpenAPI path."""
    return _FIELD.sub(lambda m: "{" + m.group(1) + "}", uri_template)


def operations(resource: object, suffix: str | None = None) -> dict[str, Any]:
    """method -> operation, from the responders' docstrings (``on_get`` or ``on_get_<suffix>``)."""
    ops: dict[str, Any] = {}
    for method in HTTP_METHODS:
        name = f"on_{method}" + (f"_{suffix}" if suffix else "")
        responder = getattr(resource, name, None)
        if responder is None:
            continue
        doc = load_operations_from_docstring(inspect.getdoc(responder) or "")
        if method not in doc:
            raise ValueError(f"{type(resource).__name__}.{name} has no OpenAPI block in its docstring")
        ops[method] = doc[method]
    return ops


def add_route(spec: APISpec, uri_template: str, resource: object, suffix: str | None = None) -> None:
    spec.path(path=openapi_path(uri_template), operations=operations(resource, suffix))


def to_openapi30(schema: Any) -> Any:
    """JSON Schema from pydantic -> OpenAPI 3.0: ``anyOf [X, {type: null}]`` becomes ``X`` + ``nullable``."""
    if isinstance(schema, list):
        return [to_openapi30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: to_openapi30(v) for k, v in schema.items()}
    variants = out.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        rest = [v for v in variants if v != {"type": "null"}]
        out.pop("anyOf")
        if len(rest) == 1 and "$ref" not in rest[0]:
            out.update(rest[0])
        else:
            out["anyOf"] = rest
        out["nullable"] = True
    if "const" in out:  # 3.0 has no const
        out["enum"] = [out.pop("const")]
    return out


def add_models(spec: APISpec, *models: type[BaseModel]) -> None:
    """Register pydantic models (and the models they nest) as components/schemas."""
    for model in models:
        schema = to_openapi30(model.model_json_schema(ref_template="#/components/schemas/{model}"))
        for name, sub in schema.pop("$defs", {}).items():
            if name not in spec.components.schemas:
                spec.components.schema(name, sub)
        if model.__name__ not in spec.components.schemas:
            spec.components.schema(model.__name__, schema)


def new_spec() -> APISpec:
    return APISpec(
        title="ordersctl API",
        version=__version__,
        openapi_version="3.0.3",
        info={"description": "Orders stored by the ordersctl pipeline, read through a memory + Redis cache."},
    )
