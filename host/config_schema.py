"""Config schemas: pydantic models for config sections, and checking a config against them.

The host declares the sections it reads (:data:`HOST_CONFIG_SCHEMA`); each
plugin and module declares its own with ``config_schema=`` on
:func:`host.create_backend_plugin` / :func:`host.create_backend_module`.
:func:`check_sections` validates a merged config tree against all of them and
returns :class:`Finding`\\ s: errors for wrong types, enum values and
durations, warnings (with a "did you mean") for keys no schema knows.

Section models derive from :class:`ConfigSection` and name fields in
snake_case; the config keys are their camelCase aliases.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Tag,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from host.config import Config, ConfigError, is_secret_key, parse_duration

Schemas = Mapping[str, type[BaseModel]]


class ConfigSection(BaseModel):
    """Base of every config section model: camelCase keys, unknown keys reported."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


def _duration(value: Any) -> Any:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise ValueError(f"invalid duration: {error}") from None


#: A Backstage duration: ``{hours: 1}``, ISO-8601 ``PT1H``, ``"1 hour"`` or milliseconds.
Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration")
    return value


#: A :data:`Duration` longer than zero.
PositiveDuration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive)]

SectionT = TypeVar("SectionT", bound=BaseModel)


def read_section(config: Config, path: str, model: type[SectionT]) -> SectionT:
    """The config section at dotted ``path`` validated by ``model``; an absent section gives the model's defaults.

    This is how code reads a section, so types, bounds and defaults live in the model that
    ``greenroom config check`` uses too. A bad value raises :class:`~host.config.ConfigError`
    naming the key as the check does (``Invalid config at 'notifications.limits.maxUpdateIds':
    Input should be greater than 0 (got 0)``). Keys the model does not know are left out here;
    ``config check`` warns about them.
    """
    node = config.get_optional(path)
    if node is None:
        node = {}
    if not isinstance(node, Mapping):
        raise ConfigError(f"Invalid config at '{path}': expected an object")
    known = set(_aliases(model)) | set(model.model_fields)
    node = {key: value for key, value in node.items() if key in known}
    try:
        return model.model_validate(node)
    except ValidationError as error:
        raise ConfigError("; ".join(finding.message for finding in _findings(path, model, node, error))) from None


_TAG_OF: dict[type, str] = {
    bool: "boolean",
    str: "string",
    dict: "object",
    list: "list",
    int: "number",
    float: "number",
}


def by_kind(**branches: Any) -> Any:
    """A union whose branch is picked by the value's JSON kind, so errors come from that branch only.

    ``by_kind(string=str, object=DatabaseConnection)``; kinds are ``string``,
    ``boolean``, ``number``, ``object`` and ``list``.
    """
    first = next(iter(branches))

    def pick(value: Any) -> str:
        kind = next((tag for kind, tag in _TAG_OF.items() if type(value) is kind), None)
        return kind if kind in branches else first

    members = tuple(Annotated[kind, Tag(tag)] for tag, kind in branches.items())
    return Annotated[typing.Union[members], Discriminator(pick)]  # noqa: UP007 - a runtime-built union


# -- the host's own sections ----------------------------------------------------------------------


class AppConfig(ConfigSection):
    """``app``: what the frontend and links use."""

    base_url: str | None = None
    title: str | None = None


class ListenConfig(ConfigSection):
    """``backend.listen``."""

    host: str | None = None
    port: int | None = Field(default=None, ge=0, le=65535)


class DatabaseConnection(ConfigSection):
    """``backend.database.connection`` as an object (SQLite or PostgreSQL keys)."""

    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    password: str | None = None
    database: str | None = None
    ssl: by_kind(boolean=bool, object=dict[str, Any], string=str) | None = None  # type: ignore[valid-type]
    directory: str | None = None
    filename: str | None = None


Connection = by_kind(object=DatabaseConnection, string=str)
DatabaseClient = Literal["sqlite", "sqlite3", "better-sqlite3", "pg", "postgres", "postgresql"]


class PoolConfig(ConfigSection):
    """``backend.database.pool``."""

    size: int | None = Field(default=None, ge=1)
    max_overflow: int | None = Field(default=None, ge=0)
    pre_ping: bool | None = None
    ping_idle_after: Duration | None = None
    recycle_seconds: int | None = Field(default=None, ge=1)


class PluginDatabaseConfig(ConfigSection):
    """``backend.database.plugin.<pluginId>``: per-plugin overrides."""

    client: DatabaseClient | None = None
    connection: Connection | None = None  # type: ignore[valid-type]
    skip_migrations: bool | None = None


class DatabaseConfig(ConfigSection):
    """``backend.database``."""

    client: DatabaseClient | None = None
    connection: Connection | None = None  # type: ignore[valid-type]
    prefix: str | None = None
    plugin_division_mode: Literal["database", "schema"] | None = None
    ensure_exists: bool | None = None
    skip_migrations: bool | None = None
    pool: PoolConfig | None = None
    plugin: dict[str, PluginDatabaseConfig] | None = None


class AccessRestriction(ConfigSection):
    """One ``accessRestrictions`` entry of a static token."""

    plugin: str | None = None
    permission: str | None = None


class StaticTokenOptions(ConfigSection):
    """``options`` of a static external-access token."""

    token: str = Field(min_length=8)
    subject: str


class ExternalAccess(ConfigSection):
    """One ``backend.auth.externalAccess`` entry."""

    type: Literal["static"]
    options: StaticTokenOptions
    access_restrictions: list[AccessRestriction] | None = None


class BackendAuthConfig(ConfigSection):
    """``backend.auth``."""

    external_access: list[ExternalAccess] | None = None
    dangerously_disable_default_auth_policy: bool | None = None


class FeaturesConfig(ConfigSection):
    """``backend.features``: entry-point discovery."""

    discovery: bool | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None


BootFailure = Literal["abort", "continue"]


class StartupDefaults(ConfigSection):
    """``backend.startup.default``."""

    on_plugin_boot_failure: BootFailure | None = None
    on_plugin_module_boot_failure: BootFailure | None = None


class ModuleStartup(ConfigSection):
    """``backend.startup.plugins.<pluginId>.modules.<moduleId>``."""

    on_plugin_module_boot_failure: BootFailure | None = None


class PluginStartup(ConfigSection):
    """``backend.startup.plugins.<pluginId>``."""

    on_plugin_boot_failure: BootFailure | None = None
    modules: dict[str, ModuleStartup] | None = None


class StartupConfig(ConfigSection):
    """``backend.startup``: what a failing plugin or module does to startup."""

    default: StartupDefaults | None = None
    plugins: dict[str, PluginStartup] | None = None


class LifecycleConfig(ConfigSection):
    """``backend.lifecycle``."""

    startup_request_pause_timeout: Duration | None = None
    server_shutdown_delay: Duration | None = None
    shutdown_timeout: Duration | None = None


class LoggerConfig(ConfigSection):
    """``backend.logger``."""

    level: Literal["error", "warn", "warning", "info", "debug"] | None = None
    format: Literal["json", "text"] | None = None
    access_log: bool | None = None


class HealthConfig(ConfigSection):
    """``backend.health``: the readiness probe of each plugin's database."""

    database_probe_interval: Duration | None = None
    database_probe_timeout: Duration | None = None


class LimitsConfig(ConfigSection):
    """``backend.limits``: server-wide request limits (see :mod:`host.limits`)."""

    max_body_bytes: int | None = Field(default=None, gt=0)
    max_header_bytes: int | None = Field(default=None, gt=0)
    headers_timeout: Duration | None = None
    keep_alive_timeout: Duration | None = None
    max_connections: int | None = Field(default=None, gt=0)
    max_web_socket_message_bytes: int | None = Field(default=None, gt=0, alias="maxWebSocketMessageBytes")


Strings = by_kind(string=str, list=list[str])


class CorsConfig(ConfigSection):
    """``backend.cors``: Backstage's cors middleware options (see :mod:`host.cors`)."""

    origin: Strings | None = None  # type: ignore[valid-type]
    methods: Strings | None = None  # type: ignore[valid-type]
    allowed_headers: Strings | None = None  # type: ignore[valid-type]
    exposed_headers: Strings | None = None  # type: ignore[valid-type]
    credentials: bool | None = None
    max_age: float | None = None
    preflight_continue: bool | None = None
    options_success_status: int | None = None


class SchedulerConfig(ConfigSection):
    """``backend.scheduler``."""

    check_period: Duration | None = None


class WebSocketConfig(ConfigSection):
    """``backend.websocket``."""

    ping_interval: Duration | None = None


class ActionsConfig(ConfigSection):
    """``backend.actions``."""

    plugin_sources: list[str] | None = None


class BackendConfig(ConfigSection):
    """``backend``."""

    base_url: str | None = None
    listen: ListenConfig | None = None
    https: by_kind(boolean=bool, object=dict[str, Any]) | None = None  # type: ignore[valid-type]
    workers: int | None = Field(default=None, ge=1)
    database: DatabaseConfig | None = None
    auth: BackendAuthConfig | None = None
    features: FeaturesConfig | None = None
    startup: StartupConfig | None = None
    lifecycle: LifecycleConfig | None = None
    logger: LoggerConfig | None = None
    scheduler: SchedulerConfig | None = None
    websocket: WebSocketConfig | None = None
    actions: ActionsConfig | None = None
    control_socket: str | None = None
    health: HealthConfig | None = None
    limits: LimitsConfig | None = None
    cors: CorsConfig | None = None
    csp: dict[str, by_kind(list=list[str], boolean=Literal[False])] | None = None  # type: ignore[valid-type]


class PostgresBusConfig(ConfigSection):
    """``events.postgres``."""

    connection: Connection | None = None  # type: ignore[valid-type]
    channel: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    payload_retention: Duration | None = None


class RedisBusConfig(ConfigSection):
    """``events.redis``."""

    url: str | None = Field(default=None, pattern=r"^rediss?://")
    channel: str | None = None


class EventsConfig(ConfigSection):
    """``events``: the bus between processes."""

    bus: Literal["inprocess", "postgres", "redis"] | None = None
    postgres: PostgresBusConfig | None = None
    redis: RedisBusConfig | None = None


class DiscoveryEndpoint(ConfigSection):
    """One ``discovery.endpoints`` entry."""

    target: by_kind(string=str, object=dict[str, str])  # type: ignore[valid-type]
    plugins: list[str]


class DiscoveryConfig(ConfigSection):
    """``discovery``: where other plugins' APIs live."""

    endpoints: list[DiscoveryEndpoint] | None = None


#: The sections the host itself reads.
HOST_CONFIG_SCHEMA: dict[str, type[BaseModel]] = {
    "app": AppConfig,
    "backend": BackendConfig,
    "events": EventsConfig,
    "discovery": DiscoveryConfig,
}


# -- checking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One result of a config check."""

    level: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        return self.message


def check_sections(
    data: Mapping[str, Any], schemas: Schemas, context: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Validate ``data`` against every section model in ``schemas`` (dotted key -> model).

    A section's keys that a deeper schema owns (``notifications.processors.email``
    inside ``notifications``) are validated by that schema only. Top-level
    keys that no schema owns are warnings.
    """
    findings: list[Finding] = []
    top_level = sorted({key.split(".")[0] for key in schemas})
    for key in data:
        if key not in top_level:
            findings.append(_unknown(key, key, top_level))
    for path in sorted(schemas):
        node = _at(data, path)
        if node is None:
            continue
        owned = [other[len(path) + 1 :] for other in schemas if other.startswith(path + ".")]
        node = _without(node, owned)
        try:
            schemas[path].model_validate(node, context=dict(context or {}))
        except ValidationError as error:
            findings.extend(_findings(path, schemas[path], node, error))
    return findings


def _at(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def _without(node: Any, paths: list[str]) -> Any:
    if not paths or not isinstance(node, Mapping):
        return node
    result = dict(node)
    for path in paths:
        head, _, rest = path.partition(".")
        if head in result:
            if rest:
                result[head] = _without(result[head], [rest])
            else:
                del result[head]
    return result


def _findings(path: str, model: type[BaseModel], node: Any, error: ValidationError) -> list[Finding]:
    findings: list[Finding] = []
    for item in error.errors(include_url=False):
        parts = _real_parts(node, item["loc"], keep_last=item["type"] in ("missing", "extra_forbidden"))
        key = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
        if item["type"] == "extra_forbidden":
            known = _aliases(_model_at(model, parts[:-1]))
            findings.append(_unknown(key, str(parts[-1]), known))
        elif item["type"] == "missing":
            findings.append(Finding("error", f"Missing required config value at '{key}'"))
        else:
            findings.append(Finding("error", f"Invalid config at '{key}': {_message(item, secret=is_secret_key(key))}"))
    return findings


def _message(item: Any, *, secret: bool = False) -> str:
    message = str(item["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    value = item.get("input")
    if item["type"] != "missing" and not secret and isinstance(value, (str, int, float, bool)):
        message += f" (got {value!r})"
    return message


def _real_parts(node: Any, loc: tuple[int | str, ...], *, keep_last: bool) -> list[int | str]:
    """The parts of a pydantic error location that are config keys (union branch tags dropped)."""
    parts: list[int | str] = []
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_mapping or in_list:
            parts.append(part)
            node = node[part]
        elif last and keep_last:
            parts.append(part)
    return parts


def _unknown(key: str, name: str, known: list[str]) -> Finding:
    message = f"Unknown config key '{key}'"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    if close:
        message += f", did you mean '{close[0]}'?"
    return Finding("warning", message)


def _aliases(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_at(model: type[BaseModel], parts: list[int | str]) -> type[BaseModel] | None:
    """The section model that holds the keys at ``parts`` below ``model`` (or ``None``)."""
    current: Any = model
    for part in parts:
        current = unroot(current)
        if isinstance(part, int):
            current = _element_model(current, list)
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            current = _first_model(field.annotation) if field is not None else None
        else:
            current = _element_model(current, dict)
        if current is None:
            return None
    found = _first_model(current)
    return found if isinstance(found, type) and issubclass(found, BaseModel) else None


def unroot(annotation: Any) -> Any:
    """The annotation inside a :class:`pydantic.RootModel` section (a list of workspaces), else ``annotation``."""
    if isinstance(annotation, type) and issubclass(annotation, RootModel):
        return annotation.model_fields["root"].annotation
    return annotation


def _element_model(annotation: Any, container: type) -> Any:
    for candidate in _flatten(annotation):
        origin = typing.get_origin(candidate)
        if origin is container or (container is list and origin is tuple):
            args = [arg for arg in typing.get_args(candidate) if arg is not Ellipsis]
            return args[-1] if args else None
    return None


def _first_model(annotation: Any) -> Any:
    for candidate in _flatten(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    for candidate in _flatten(annotation):
        if typing.get_origin(candidate) in (list, dict):
            return candidate
    return None


def _flatten(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [leaf for arg in typing.get_args(annotation) for leaf in _flatten(arg)]
    return [annotation]
