"""schemathesis against the OpenAPI documents the host serves: no 500, no answer the document forbids.

Each operation of ``/api/notifications`` and ``/api/catalog`` is one test:
it loads the document from the running host and sends generated requests
that fit it (positive) and that do not (negative). Every answer must not
be a 5xx and must match the document (status code, content type, body
schema). ``POST /notifications`` (and its legacy ``POST /``) is called
with the static service token, every other operation with a user token.
Examples are derandomized, so CI sends the same requests every time.

NOTE: ``schemathesis.pytest.from_fixture`` does not run on pytest 9 (it
sets ``Function._nodeid``), so the operations are parametrized here and
fuzzed with ``APIOperation.as_strategy``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from plugin_catalog.openapi import build_openapi_document as catalog_document
from plugin_notifications.openapi import RESERVED_IDS
from plugin_notifications.openapi import build_openapi_document as notifications_document
from tests.fuzz.conftest import USER_A, BackgroundHost

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ_SETTINGS = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
SERVICE_OPERATIONS = {("POST", "/notifications"), ("POST", "/")}
DOCUMENTS = {"notifications": notifications_document(), "catalog": catalog_document()}
OPERATIONS = [
    pytest.param(plugin_id, method.upper(), path, id=f"{plugin_id} {method.upper()} {path}")
    for plugin_id, document in DOCUMENTS.items()
    for path, methods in document["paths"].items()
    for method in methods
]


@pytest.fixture(scope="module")
def user_bearer(fuzz_host: BackgroundHost) -> str:
    """The ``Authorization`` value of the fuzzing user."""
    return fuzz_host.bearer(USER_A)


@pytest.fixture(scope="module")
def served_schemas(fuzz_host: BackgroundHost) -> dict[str, Any]:
    """The documents as the running host serves them, loaded by schemathesis."""
    return {
        plugin_id: schemathesis.openapi.from_url(f"{fuzz_host.handle.url}/api/{plugin_id}/openapi.json")
        for plugin_id in DOCUMENTS
    }


@pytest.mark.parametrize(("plugin_id", "method", "path"), OPERATIONS)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_operation_conforms(
    served_schemas: dict[str, Any],
    fuzz_host: BackgroundHost,
    user_bearer: str,
    plugin_id: str,
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    """Generated requests to one operation get documented answers and never a 5xx."""
    operation = served_schemas[plugin_id][path][method]
    service = plugin_id == "notifications" and (method, path) in SERVICE_OPERATIONS
    auth = fuzz_host.service_bearer if service else user_bearer

    # A negated ``id`` is a literal segment (``/status``), which routes to another operation.
    strategy = operation.as_strategy(generation_mode=mode).filter(
        lambda case: (case.path_parameters or {}).get("id") not in RESERVED_IDS
    )

    @FUZZ_SETTINGS
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": auth}, checks=CHECKS)

    fuzz()


@pytest.mark.parametrize("plugin_id", list(DOCUMENTS))
def test_openapi_document_is_served_without_credentials(fuzz_host: BackgroundHost, plugin_id: str) -> None:
    """``/api/<plugin>/openapi.json`` needs no token and is the built document plus the plugin's mount."""
    response = httpx.get(f"{fuzz_host.handle.url}/api/{plugin_id}/openapi.json")
    assert response.status_code == 200
    assert response.json() == {**DOCUMENTS[plugin_id], "servers": [{"url": f"/api/{plugin_id}"}]}
