"""A minimal runner for Backstage-style templates: ``greenroom template run FILE.yaml``.

It reads a ``kind: Template`` document, takes the parameter values from
``--values`` (a JSON object) over the ``default`` of each property in
``spec.parameters``, and runs ``spec.steps[]`` in order through the actions
registry of a running host over HTTP::

    spec:
      parameters:
        - required: [title]
          properties:
            title: {type: string, default: Deployment finished}
      steps:
        - id: notify
          name: Notify the team
          action: notification:send
          if: ${{ parameters.notify }}          # optional; a false value skips the step
          input:
            recipients: broadcast
            title: ${{ parameters.title }}

A step's ``action`` is matched against the ``name`` (or the full ``id``) of
the actions listed by each plugin in ``backend.actions.pluginSources``
(default ``["notifications"]``, where this package's ``notification:send``
lives), at ``/api/<plugin>/.backstage/actions/v1/actions``. Every step's
action is resolved before the first step runs.

``${{ ... }}`` are Jinja2 expressions over ``parameters`` and
``steps.<id>.output`` (filters too, in Jinja2's sandbox). A value that is
exactly one expression is evaluated by Jinja2's native environment and keeps
its type (a list stays a list, a boolean a boolean); inside other text it is
formatted as a string (objects, lists and booleans as JSON). Undefined values
become ``null`` and are dropped from inputs, as Backstage drops
``undefined``. Not supported: ``each``, ``spec.output``, task checkpoints and
secrets.

The command is added to ``greenroom`` through the ``greenroom.cli`` entry
point ``template`` of this distribution.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jinja2
import jinja2.meta
import yaml
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeEnvironment, NativeTemplate
from jinja2.sandbox import SandboxedEnvironment

ACTIONS_PATH = "/.backstage/actions/v1/actions"
DEFAULT_PLUGIN_SOURCES = ("notifications",)
TOKEN_ENV = "GREENROOM_TOKEN"
#: A value that is exactly one ``${{ ... }}`` expression.
_EXPRESSION = re.compile(r"\$\{\{(?:(?!\}\}).)*\}\}", re.DOTALL)
_ROOTS = ("parameters", "steps")


class TemplateError(Exception):
    """The template is invalid or one of its steps failed."""


@dataclass
class Step:
    """One entry of ``spec.steps``."""

    id: str
    name: str
    action: str
    input: dict[str, Any] = field(default_factory=dict)
    condition: Any = None


@dataclass
class StepResult:
    """What a step did."""

    id: str
    action_id: str | None
    output: dict[str, Any] | None
    skipped: bool = False


# -- reading the template --------------------------------------------------------


def load_template(path: str | Path) -> dict[str, Any]:
    """The first ``kind: Template`` document of ``path``."""
    try:
        documents = list(yaml.safe_load_all(Path(path).read_text()))
    except (OSError, yaml.YAMLError) as error:
        raise TemplateError(f"Cannot read template {path}: {error}") from error
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "Template":
            return document
    raise TemplateError(f"{path} contains no document with kind: Template")


def _parameter_sections(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    sections = spec.get("parameters") or []
    sections = [sections] if isinstance(sections, dict) else sections
    if not isinstance(sections, list) or not all(isinstance(s, dict) for s in sections):
        raise TemplateError("spec.parameters must be an object or a list of objects")
    return sections


def resolve_parameters(template: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` over the properties' defaults; every ``required`` parameter must end up set."""
    spec = template.get("spec") or {}
    resolved: dict[str, Any] = {}
    required: list[str] = []
    for section in _parameter_sections(spec):
        for name, schema in (section.get("properties") or {}).items():
            if isinstance(schema, dict) and "default" in schema:
                resolved[name] = schema["default"]
        required += list(section.get("required") or [])
    resolved.update(values)
    missing = [name for name in required if resolved.get(name) in (None, "")]
    if missing:
        raise TemplateError(f"Missing required parameter(s): {', '.join(missing)}")
    return resolved


def read_steps(template: Mapping[str, Any]) -> list[Step]:
    """``spec.steps`` as :class:`Step` objects (ids default to ``step-<n>``)."""
    raw = (template.get("spec") or {}).get("steps")
    if not isinstance(raw, list) or not raw:
        raise TemplateError("spec.steps must be a non-empty list")
    steps = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("action"), str):
            raise TemplateError(f"Step {index} must be an object with an action")
        step_input = item.get("input") or {}
        if not isinstance(step_input, dict):
            raise TemplateError(f"The input of step {index} must be an object")
        step_id = str(item.get("id") or f"step-{index}")
        steps.append(Step(step_id, str(item.get("name") or step_id), item["action"], step_input, item.get("if")))
    return steps


# -- expressions -----------------------------------------------------------------


def _defined(value: Any) -> Any:
    """``value``, or ``None`` for an undefined one; what the sandbox refused raises its ``SecurityError``."""
    if isinstance(value, jinja2.Undefined):
        if value._undefined_exception is SecurityError:
            value._fail_with_undefined_error()
        return None
    return value


def _as_text(value: Any) -> str:
    value = _defined(value)
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value)
    return str(value)


def _concat(values: Iterable[Any]) -> Any:
    """One output node keeps its native value (no ``literal_eval`` of strings); several form text."""
    parts = list(values)
    if len(parts) == 1:
        return _defined(parts[0])
    return "".join(_as_text(part) for part in parts)


class _TemplateEnvironment(SandboxedEnvironment, NativeEnvironment):
    """Jinja2's native environment, sandboxed, with Backstage's ``${{ }}`` delimiters.

    ``parameters.items`` reads the parameter ``items``, not the dict method: mappings are
    looked up by key first.
    """

    concat = staticmethod(_concat)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Keys of a mapping before its attributes."""
        if isinstance(obj, Mapping):
            if attribute in obj:
                return obj[attribute]
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


class _Template(NativeTemplate):
    """Renders with :class:`_TemplateEnvironment`'s ``concat`` (``NativeTemplate`` names its class)."""

    environment_class = _TemplateEnvironment


_TemplateEnvironment.template_class = _Template

_ENVIRONMENT = _TemplateEnvironment(
    variable_start_string="${{",
    variable_end_string="}}",
    block_start_string="${%",
    block_end_string="%}",
    comment_start_string="${#",
    comment_end_string="#}",
    undefined=jinja2.ChainableUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


def _render_string(value: str, context: Mapping[str, Any]) -> Any:
    source = value.strip() if _EXPRESSION.fullmatch(value.strip()) else value
    try:
        parsed = _ENVIRONMENT.parse(source)
        unknown = jinja2.meta.find_undeclared_variables(parsed) - set(_ROOTS)
        if unknown:
            raise TemplateError(
                f"Unsupported expression in '{value}': {', '.join(sorted(unknown))} is not defined; "
                "use parameters.x or steps.id.output.x"
            )
        return _ENVIRONMENT.from_string(source).render(dict(context))
    except jinja2.TemplateError as error:
        raise TemplateError(f"Invalid expression in '{value}': {error}") from error


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Substitute ``${{ ... }}`` in strings, lists and objects; drop keys that render to ``None``."""
    if isinstance(value, str):
        return _render_string(value, context) if "${" in value else value
    if isinstance(value, list):
        return [render(item, context) for item in value]
    if isinstance(value, dict):
        rendered = {key: render(item, context) for key, item in value.items()}
        return {key: item for key, item in rendered.items() if item is not None}
    return value


# -- running -----------------------------------------------------------------------


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['name']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


class ActionsClient:
    """Lists and invokes actions of a running host's plugins with a bearer token."""

    def __init__(
        self, client: httpx.AsyncClient, token: str, plugin_sources: list[str], warn: Callable[[str], None]
    ) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._plugin_sources = plugin_sources
        self._warn = warn

    async def list(self) -> list[dict[str, Any]]:
        """Every action of every plugin source; a source that fails is reported and skipped."""
        actions: list[dict[str, Any]] = []
        for plugin_id in self._plugin_sources:
            try:
                response = await self._client.get(f"/api/{plugin_id}{ACTIONS_PATH}", headers=self._headers)
            except httpx.HTTPError as error:
                raise TemplateError(f"Cannot reach the host at {self._client.base_url}: {error}") from error
            if response.status_code != 200:
                self._warn(f"Cannot list the actions of plugin '{plugin_id}': {_error_message(response)}")
                continue
            actions += response.json().get("actions", [])
        return actions

    async def invoke(self, action: Mapping[str, Any], action_input: Mapping[str, Any]) -> dict[str, Any]:
        """Invoke ``action`` with ``action_input``; a non-2xx answer raises :class:`TemplateError`."""
        path = f"/api/{action['pluginId']}{ACTIONS_PATH}/{quote(action['id'], safe=':')}/invoke"
        try:
            response = await self._client.post(path, json=dict(action_input), headers=self._headers)
        except httpx.HTTPError as error:
            raise TemplateError(f"Cannot reach the host at {self._client.base_url}: {error}") from error
        if response.status_code >= 300:
            raise TemplateError(_error_message(response))
        return dict(response.json().get("output") or {})


def _match(step: Step, actions: list[dict[str, Any]]) -> dict[str, Any]:
    for action in actions:
        if step.action in (action.get("id"), action.get("name")):
            return action
    raise TemplateError(f"Template action with ID '{step.action}' is not registered.")


async def run_template(
    template: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    base_url: str,
    token: str,
    plugin_sources: list[str] | None = None,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[StepResult]:
    """Run every step of ``template`` against the host at ``base_url``; stop at the first failure."""
    parameters = resolve_parameters(template, values)
    steps = read_steps(template)
    sources = list(plugin_sources or DEFAULT_PLUGIN_SOURCES)
    results: list[StepResult] = []
    async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=60, transport=transport) as client:
        actions_client = ActionsClient(client, token, sources, warn)
        available = await actions_client.list()
        resolved = {step.id: _match(step, available) for step in steps}
        context: dict[str, Any] = {"parameters": parameters, "steps": {}}
        for step in steps:
            if step.condition is not None and not render(step.condition, context):
                log(f"[{step.id}] {step.name}: skipped")
                results.append(StepResult(step.id, None, None, skipped=True))
                continue
            action = resolved[step.id]
            log(f"[{step.id}] {step.name}: {action['id']}")
            try:
                output = await actions_client.invoke(action, render(step.input, context))
            except TemplateError as error:
                raise TemplateError(f"Step '{step.id}' ({action['id']}) failed: {error}") from error
            context["steps"][step.id] = {"output": output}
            results.append(StepResult(step.id, action["id"], output))
            if output:
                log(f"[{step.id}] output: {json.dumps(output, sort_keys=True)}")
    log(f"Template completed: {sum(not r.skipped for r in results)} of {len(results)} steps ran")
    return results


# -- command line -------------------------------------------------------------------


def cmd_template_run(args: argparse.Namespace) -> int:
    """``greenroom template run FILE.yaml [--config ...] [--values JSON] [--url URL] [--token TOKEN]``."""
    from host import Config, ConfigError

    try:
        config = Config.load(args.config)
        values = json.loads(args.values) if args.values else {}
        if not isinstance(values, dict):
            raise TemplateError("--values must be a JSON object")
        token = args.token or os.environ.get(TOKEN_ENV)
        if not token:
            raise TemplateError(f"A service token is required: pass --token or set {TOKEN_ENV}")
        base_url = args.url or config.get_optional_string("backend.baseUrl") or "http://localhost:7007"
        sources = config.get_optional_string_list("backend.actions.pluginSources")
        asyncio.run(
            run_template(load_template(args.file), values, base_url=base_url, token=token, plugin_sources=sources)
        )
    except (TemplateError, ConfigError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except json.JSONDecodeError as error:
        print(f"Error: --values is not valid JSON: {error}", file=sys.stderr)
        return 1
    return 0


def register(sub: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``template run`` to the ``greenroom`` command line (entry point of ``greenroom.cli``)."""
    template = sub.add_parser("template", help="run Backstage-style templates through a running host's actions")
    template_sub = template.add_subparsers(dest="template_command", required=True)
    run = template_sub.add_parser("run", help="run a template's steps (spec.steps) in order")
    add_config(run)
    run.add_argument("file", metavar="FILE.yaml", help="the template (kind: Template)")
    run.add_argument("--values", metavar="JSON", help="parameter values as a JSON object (over the defaults)")
    run.add_argument("--url", help="the host's base URL (default backend.baseUrl)")
    run.add_argument("--token", help=f"a service token (default ${TOKEN_ENV})")
    run.set_defaults(func=cmd_template_run)
