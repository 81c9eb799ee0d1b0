"""Processors: an installed distribution (entry points), a backend module, custom resolvers (16, 17)."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from host import core_services, create_backend_module
from host.config import deep_merge
from host.testing import eventually
from plugin_notifications import hookimpl, hookspecs, notifications_processing_extension_point
from plugin_notifications.models import Notification
from plugin_notifications.processing import HOOKS, PROCESSOR_HOOKS, ProcessorRegistry
from tests.conftest import HostHandle, install_distribution, on_sys_path, start_host
from tests.notifications.conftest import BROADCAST, FIXTURES, Api, notifications_config, user

JANE = "user:default/jane"
MOCK = "user:default/mock"


@pytest.fixture(scope="session")
def processor_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install tests/notifications/fixtures/processor_dist into a site directory of its own."""
    target = install_distribution(FIXTURES / "processor_dist", tmp_path_factory.mktemp("processor"))
    assert list(target.glob("greenroom_test_processor-*.dist-info"))
    return target


@pytest.fixture
def installed_processor(processor_site: Path) -> Iterator[Any]:
    """Put the installed distribution on sys.path; yield its module."""
    with on_sys_path(processor_site, "greenroom_test_processor"):
        module = importlib.import_module("greenroom_test_processor")
        module.DELIVERED.clear()
        yield module


@pytest.fixture
async def audit_host(db_kind: str, installed_processor: Any) -> AsyncIterator[HostHandle]:
    """A host whose notifications plugin found the Audit processor through its entry point."""
    async with start_host(db_kind, config=notifications_config()) as handle:
        yield handle


def test_entry_point_is_found_through_importlib_metadata(installed_processor: Any) -> None:
    """The distribution is discovered by pluggy's load_setuptools_entrypoints."""
    registry = ProcessorRegistry()
    assert registry.load_entry_points(hookspecs.ENTRY_POINT_GROUP) == 1
    assert registry.channel_names() == ["Audit"]


async def test_installed_processor_changes_notifications(audit_host: HostHandle, installed_processor: Any) -> None:
    """preProcess changes what is stored; postProcess sees the stored notification."""
    api = Api(audit_host)
    [item] = await api.send_ok(user("mock"), title="deploy")
    assert item["payload"]["title"] == "[audited] deploy"
    assert item["payload"]["description"] == "checked by the audit processor"
    stored = (await api.get(MOCK, f"/{item['id']}")).json()
    assert stored["payload"]["title"] == "[audited] deploy"
    await eventually(lambda: (MOCK, "[audited] deploy") in installed_processor.DELIVERED)
    [shared] = await api.send_ok(BROADCAST, title="all")
    assert shared["payload"]["title"] == "[audited] all"
    await eventually(lambda: (None, "[audited] all") in installed_processor.DELIVERED)


async def test_processor_filters_and_process_options(audit_host: HostHandle, installed_processor: Any) -> None:
    """Excluded topics are not processed; processOptions can re-address a notification."""
    api = Api(audit_host)
    [secret] = await api.send_ok(user("mock"), title="quiet", topic="secret")
    assert secret["payload"]["title"] == "quiet"
    [redirected] = await api.send_ok(user("mock"), title="[to-jane] hello")
    assert redirected["user"] == JANE


async def test_failing_processor_never_loses_the_notification(audit_host: HostHandle) -> None:
    """A hook that raises is logged and skipped; the notification is stored unchanged."""
    api = Api(audit_host)
    [item] = await api.send_ok(user("mock"), title="explode please")
    assert item["payload"]["title"] == "explode please"
    assert (await api.list(MOCK))["totalCount"] == 1


async def test_processor_is_a_settings_channel(audit_host: HostHandle, installed_processor: Any) -> None:
    """The processor name is a channel; turning it off for an origin skips the processor for that user."""
    api = Api(audit_host)
    await api.send_ok(user("mock"), title="first")
    settings = (await api.get(MOCK, "/settings")).json()
    assert [channel["id"] for channel in settings["channels"]] == ["Web", "Audit"]
    body = {"channels": [{"id": "Audit", "origins": [{"id": "test-service", "enabled": False}]}]}
    assert (await api.post(MOCK, "/settings", body)).status_code == 200
    installed_processor.DELIVERED.clear()
    items = await api.send_ok({"type": "entity", "entityRef": [MOCK, JANE]}, title="second")
    by_user = {item["user"]: item["payload"]["title"] for item in items}
    assert by_user == {MOCK: "second", JANE: "[audited] second"}
    await eventually(lambda: (JANE, "[audited] second") in installed_processor.DELIVERED)
    assert all(user_ref != MOCK for user_ref, _ in installed_processor.DELIVERED)


async def test_post_process_runs_when_web_is_disabled(audit_host: HostHandle, installed_processor: Any) -> None:
    """A user with Web off gets nothing stored, but other channels still deliver."""
    api = Api(audit_host)
    body = {"channels": [{"id": "Web", "origins": [{"id": "test-service", "enabled": False}]}]}
    assert (await api.post(MOCK, "/settings", body)).status_code == 200
    assert await api.send_ok(user("mock"), title="elsewhere") == []
    await eventually(lambda: (MOCK, "[audited] elsewhere") in installed_processor.DELIVERED)


# -- a backend module: Backstage-style processor object and a custom resolver --------------


class Uppercase:
    """A processor object (methods marked @hookimpl), added through the extension point."""

    @hookimpl
    def notifications_processor_name(self) -> str:
        return "Uppercase"

    @hookimpl
    def notifications_processor_filters(self) -> dict[str, Any]:
        return {"minSeverity": "high"}

    @hookimpl
    async def notifications_pre_process(self, notification: Any, options: Any) -> Any:
        notification.payload.title = notification.payload.title.upper()
        return notification


class First:
    """Appends 1, and asks to run first."""

    @hookimpl
    def notifications_processor_name(self) -> str:
        return "First"

    @hookimpl(tryfirst=True)
    def notifications_pre_process(self, notification: Any) -> None:
        notification.payload.title += "1"


class Plain:
    """Appends 2, with no ordering marker."""

    @hookimpl
    def notifications_processor_name(self) -> str:
        return "Plain"

    @hookimpl
    def notifications_pre_process(self, notification: Any) -> None:
        notification.payload.title += "2"


class Last:
    """Appends 3, and asks to run last."""

    @hookimpl
    def notifications_processor_name(self) -> str:
        return "Last"

    @hookimpl(trylast=True)
    def notifications_pre_process(self, notification: Any) -> None:
        notification.payload.title += "3"


class SystemResolver:
    """Resolves system:default/sys to mock (plus refs that are not users, which must be ignored)."""

    async def resolve_notification_recipients(self, *, entity_refs: list[str], excluded_entity_refs: list[str]) -> Any:
        if entity_refs == ["system:default/sys"]:
            return {"userEntityRefs": [MOCK, "group:default/mock", MOCK]}
        if entity_refs == ["system:default/sloppy"]:
            return ["user:mock", "User:Default/Mock", "user:jane", "user:"]
        return ["group:default/mock", "component:default/x"]


def _module() -> Any:
    def register(reg: Any) -> None:
        def init(processing: Any, logger: Any) -> None:
            processing.add_processor([Uppercase()])
            processing.set_notification_recipient_resolver(SystemResolver())

        reg.register_init(
            deps={"processing": notifications_processing_extension_point, "logger": core_services.logger},
            init=init,
        )

    return create_backend_module("notifications", "test-processing", register)


@pytest.fixture
async def module_api(db_kind: str) -> AsyncIterator[Api]:
    """A host with the test module installed."""
    async with start_host(db_kind, config=notifications_config(), features=[_module()]) as handle:
        yield Api(handle)


async def test_custom_resolver_is_used(module_api: Api) -> None:
    """16: the module's resolver replaces the catalog; the system ref resolves to mock once."""
    items = await module_api.send_ok(user("system:default/sys"))
    assert [item["user"] for item in items] == [MOCK]


async def test_resolver_refs_are_made_canonical(module_api: Api) -> None:
    """``user:mock`` from a resolver is stored as ``user:default/mock`` and reaches the user (Backstage: never)."""
    items = await module_api.send_ok(user("system:default/sloppy"))
    assert [item["user"] for item in items] == [MOCK, "user:default/jane"]
    assert (await module_api.list(MOCK))["totalCount"] == 1


async def test_non_user_refs_from_resolver_are_ignored(module_api: Api) -> None:
    """17: a resolver returning only non-user refs gives 200 and []."""
    assert await module_api.send_ok(user("group:default/whatever")) == []


async def test_module_processor_with_filters(module_api: Api) -> None:
    """A Backstage-style object processor applies only above its minimum severity."""
    [low] = await module_api.send_ok(user("system:default/sys"), title="calm")
    [high] = await module_api.send_ok(user("system:default/sys"), title="loud", severity="critical")
    assert (low["payload"]["title"], high["payload"]["title"]) == ("calm", "LOUD")
    settings = (await module_api.get(MOCK, "/settings")).json()
    assert [channel["id"] for channel in settings["channels"]] == ["Web", "Uppercase"]


def test_second_resolver_is_refused() -> None:
    """Only one recipient resolver may be set."""
    registry = ProcessorRegistry()
    registry.set_notification_recipient_resolver(SystemResolver())
    with pytest.raises(RuntimeError):
        registry.set_notification_recipient_resolver(SystemResolver())


def test_non_processor_is_refused() -> None:
    """Objects without hook implementations are not processors (Backstage-style get_name objects neither)."""

    class BackstageStyle:
        def get_name(self) -> str:
            return "Old"

    for item in (object(), BackstageStyle()):
        with pytest.raises(TypeError, match="is not a notification processor"):
            ProcessorRegistry().add_processor(item)


def test_hook_without_a_spec_is_refused() -> None:
    """A misspelled hook fails at registration instead of being silently ignored."""

    class Typo:
        @hookimpl
        def notifications_processor_name(self) -> str:
            return "Typo"

        @hookimpl
        def notifications_post_proces(self, notification: Any) -> None:
            raise AssertionError("never called")

    registry = ProcessorRegistry()
    with pytest.raises(pluggy.PluginValidationError, match="notifications_post_proces"):
        registry.add_processor(Typo())
    assert registry.processors == [] and not registry.plugin_manager.get_plugins()


def test_every_hookspec_is_a_known_hook() -> None:
    """The hook list is derived from the specs: a new spec is called without a second list to update."""
    specs = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), f"{hookspecs.PROJECT_NAME}_spec")}
    assert set(HOOKS) == specs and set(PROCESSOR_HOOKS) == specs - {"notifications_resolve_recipients"}


class TeamResolver:
    """A resolver plugin implementing the firstresult hook directly: answers for team refs only."""

    @hookimpl
    def notifications_resolve_recipients(self, entity_refs: list[str]) -> list[str] | None:
        return [MOCK] if entity_refs == ["team:default/x"] else None  # None: let the catalog answer


def _ordering_module() -> Any:
    def register(reg: Any) -> None:
        def init(processing: Any) -> None:
            processing.add_processor(Last(), First(), Plain())
            processing.plugin_manager.register(TeamResolver())

        reg.register_init(deps={"processing": notifications_processing_extension_point}, init=init)

    return create_backend_module("notifications", "test-ordering", register)


async def test_processors_run_in_pluggy_call_order() -> None:
    """tryfirst runs first and trylast last, whatever the registration order."""
    async with start_host(config=notifications_config(), features=[_ordering_module()]) as handle:
        [item] = await Api(handle).send_ok(user(MOCK), title="x")
        assert item["payload"]["title"] == "x123"


class AsyncStamp:
    """An ``async`` pre_process that returns a changed copy (its value is what wrappers see)."""

    @hookimpl
    def notifications_processor_name(self) -> str:
        return "AsyncStamp"

    @hookimpl
    async def notifications_pre_process(self, notification: Any) -> Any:
        return notification.model_copy(update={"payload": notification.payload.model_copy(update={"topic": "async"})})


# -- start wrapper --
class Wrapping:
    """Wraps every processor's pre_process call: records what went in and brackets the title."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    @hookimpl
    def notifications_processor_name(self) -> str:
        return "Wrapping"

    @hookimpl(wrapper=True)
    def notifications_pre_process(self, notification: Notification) -> Generator[None, list[Any], list[Any]]:
        before = notification.payload.title
        results = yield  # the processor's pre_process runs here
        result = results[0] if results and results[0] is not None else notification  # None: changed in place
        self.seen.append((before, result.payload.topic))
        result.payload.title = f"<{result.payload.title}>"
        return [result]


# -- end wrapper --


async def test_a_wrapper_sees_and_changes_every_pre_process_call() -> None:
    """A processor's wrapper runs around each processor's call, sync or async, through pluggy."""
    wrapping = Wrapping()

    def register(reg: Any) -> None:
        def init(processing: Any) -> None:
            processing.add_processor(Last(), First(), AsyncStamp(), wrapping)

        reg.register_init(deps={"processing": notifications_processing_extension_point}, init=init)

    module = create_backend_module("notifications", "test-wrapping", register)
    async with start_host(config=notifications_config(), features=[module]) as handle:
        [item] = await Api(handle).send_ok(user(MOCK), title="x")
    # First, then AsyncStamp, then Last; the wrapper brackets each result and saw each input
    assert item["payload"]["title"] == "<<<x1>>3>"
    assert item["payload"]["topic"] == "async"
    assert wrapping.seen == [("x", None), ("<x1>", "async"), ("<<x1>>", "async")]


async def test_trace_hooks_logs_every_hook_call(caplog: pytest.LogCaptureFixture) -> None:
    """notifications.traceHooks: each processor hook call and pluggy's resolver call are logged."""
    config = deep_merge(notifications_config(traceHooks=True), {"backend": {"logger": {"level": "info"}}})
    async with start_host(config=config, features=[_ordering_module()]) as handle:
        caplog.clear()
        await Api(handle).send_ok(user(MOCK), title="x")
        logged = caplog.text
    assert "hook notifications_pre_process of First returned NoneType" in logged
    assert "hook notifications_pre_process of Last returned NoneType" in logged
    assert "pluggy: notifications_resolve_recipients" in logged


async def test_resolver_hook_is_firstresult_with_the_catalog_last() -> None:
    """The first implementation with an answer wins; None falls through to the catalog default."""
    async with start_host(config=notifications_config(), features=[_ordering_module()]) as handle:
        api = Api(handle)
        assert [item["user"] for item in await api.send_ok(user("team:default/x"))] == [MOCK]
        assert [item["user"] for item in await api.send_ok(user(JANE))] == [JANE]
