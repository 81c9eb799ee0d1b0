"""The actions registry: typed actions a plugin offers over HTTP.

A plugin (or one of its modules) registers actions with pydantic input and
output models::

    class SendInput(BaseModel):
        title: str

    async def send(input: SendInput, credentials, logger) -> dict:
        ...
        return {"id": "..."}

    actions_registry.register(
        name="send-thing", title="Send a thing", description="...",
        input_model=SendInput, action=send, allow=("service",),
        attributes={"destructive": False},
    )

Every action declares who may invoke it: ``allow`` names the principal types
(``"user"``, ``"service"``) and has no default, so an action cannot be open by
accident; registering without it fails at registration.

They are listed and invoked on the owning plugin's router:

* ``GET /api/<pluginId>/.backstage/actions/v1/actions`` ->
  ``{"actions": [{"id", "name", "title", "description", "pluginId",
  "attributes", "schema": {"input", "output"}}]}``;
* ``POST /api/<pluginId>/.backstage/actions/v1/actions/{id}/invoke`` with the
  input as the body -> ``{"output": {...}}``.

Listing needs user or service credentials; invoking needs a principal the
action allows (a user token on a service-only action -> 403; anonymous ->
403, as in Backstage). An unknown id -> 404; input or output failing its
model -> 400. Action ids are ``<pluginId>:<name>``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import falcon
from pydantic import BaseModel, ValidationError

from host.aio import await_me_maybe
from host.errors import InputError, NotAllowedError, NotFoundError
from host.logging import Logger

ActionFn = Callable[..., Awaitable[Any] | Any]
ACTIONS_PATH = "/.backstage/actions/v1/actions"
_DEFAULT_ATTRIBUTES = {"destructive": True, "idempotent": False, "readOnly": False}
#: Principal types an action may allow; anonymous callers are never allowed.
PRINCIPAL_TYPES = ("user", "service")


def format_validation_error(error: ValidationError) -> str:
    """One readable line per problem, naming the field: ``title: Field required``."""
    parts = []
    for problem in error.errors():
        location = ".".join(str(p) for p in problem["loc"]) or "body"
        parts.append(f"{location}: {problem['msg']}")
    return "; ".join(parts)


@dataclass
class Action:
    """One registered action."""

    id: str
    name: str
    title: str
    description: str
    plugin_id: str
    input_model: type[BaseModel]
    output_model: type[BaseModel] | None
    action: ActionFn
    allow: tuple[str, ...]
    attributes: dict[str, bool] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The wire form used by the list endpoint."""
        output_schema = self.output_model.model_json_schema() if self.output_model else {"type": "object"}
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "pluginId": self.plugin_id,
            "attributes": {**_DEFAULT_ATTRIBUTES, **self.attributes},
            "schema": {"input": self.input_model.model_json_schema(), "output": output_schema},
        }


class ActionsRegistry:
    """The plugin-scoped registry (``core_services.actions_registry``)."""

    def __init__(self, plugin_id: str, router: Any, http_auth: Any, logger: Logger) -> None:
        self.plugin_id = plugin_id
        self._http_auth = http_auth
        self._logger = logger
        self._actions: dict[str, Action] = {}
        router.add_route(ACTIONS_PATH, _ListResource(self))
        router.add_route(ACTIONS_PATH + "/{action_id}/invoke", _InvokeResource(self))
        # The resources authenticate themselves: anonymous callers get 403, as in Backstage.
        router.add_auth_policy("/.backstage/actions/*", allow="unauthenticated")

    def register(
        self,
        *,
        name: str,
        title: str,
        description: str,
        input_model: type[BaseModel],
        action: ActionFn,
        allow: Sequence[str] | None = None,
        output_model: type[BaseModel] | None = None,
        attributes: dict[str, bool] | None = None,
    ) -> Action:
        """Register an action; ``action(input, credentials, logger)`` receives any subset by name.

        ``allow`` is required: the principal types that may invoke it, e.g.
        ``("service",)`` for an action that acts on others' behalf or
        ``("user", "service")`` for one that only reads what the caller may read.
        """
        action_id = f"{self.plugin_id}:{name}"
        if action_id in self._actions:
            raise ValueError(f'Action with id "{action_id}" is already registered')
        if allow is None or isinstance(allow, str) or not allow:
            raise ValueError(
                f'Action "{action_id}" must declare who may invoke it: allow=("service",) or allow=("user", "service")'
            )
        unknown = [kind for kind in allow if kind not in PRINCIPAL_TYPES]
        if unknown:
            raise ValueError(
                f'Action "{action_id}" allows unknown principal type(s) {unknown}; use {list(PRINCIPAL_TYPES)}'
            )
        registered = Action(
            action_id,
            name,
            title,
            description,
            self.plugin_id,
            input_model,
            output_model,
            action,
            tuple(allow),
            dict(attributes or {}),
        )
        self._actions[action_id] = registered
        return registered

    def list(self) -> list[Action]:
        """Every registered action."""
        return list(self._actions.values())

    def get(self, action_id: str) -> Action:
        """The action with ``action_id``, or a 404."""
        action = self._actions.get(action_id)
        if action is None:
            raise NotFoundError(f'Action "{action_id}" not found')
        return action

    def authorize(self, action_id: str, credentials: Any) -> Action:
        """The action with ``action_id`` if its policy allows ``credentials`` (else 404 or 403)."""
        action = self.get(action_id)
        kind = credentials.principal.type
        if kind not in action.allow:
            raise NotAllowedError(f"Action \"{action_id}\" does not allow '{kind}' credentials")
        return action

    async def invoke(self, action_id: str, raw_input: Any, credentials: Any) -> dict[str, Any]:
        """Check the caller against the action's policy, validate ``raw_input``, run it and validate its output."""
        action = self.authorize(action_id, credentials)
        try:
            parsed = action.input_model.model_validate(raw_input if raw_input is not None else {})
        except ValidationError as error:
            raise InputError(f'Invalid input to action "{action_id}": {format_validation_error(error)}') from error
        available = {"input": parsed, "credentials": credentials, "logger": self._logger.child(action=action_id)}
        wanted = inspect.signature(action.action).parameters
        result: Any = await await_me_maybe(action.action(**{k: v for k, v in available.items() if k in wanted}))
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json")
        result = result or {}
        if action.output_model is not None:
            try:
                result = action.output_model.model_validate(result).model_dump(mode="json")
            except ValidationError as error:
                raise InputError(
                    f'Invalid output from action "{action_id}": {format_validation_error(error)}'
                ) from error
        return cast(dict[str, Any], result)

    async def authenticate(self, req: falcon.Request) -> Any:
        """Require a user or service principal (anonymous -> 403, as in Backstage)."""
        creds = await self._http_auth.credentials(req, allow=("user", "service", "none"))
        if creds.principal.type == "none":
            raise NotAllowedError("Actions must be invoked by an authenticated principal, not an anonymous request")
        return creds


class _ListResource:
    def __init__(self, registry: ActionsRegistry) -> None:
        self._registry = registry

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self._registry.authenticate(req)
        resp.media = {"actions": [a.describe() for a in self._registry.list()]}


class _InvokeResource:
    def __init__(self, registry: ActionsRegistry) -> None:
        self._registry = registry

    async def on_post(self, req: falcon.Request, resp: falcon.Response, action_id: str) -> None:
        creds = await self._registry.authenticate(req)
        self._registry.authorize(action_id, creds)  # 404 or 403 before the body is read
        body = await req.get_media(default_when_empty={})
        resp.media = {"output": await self._registry.invoke(action_id, body, creds)}
