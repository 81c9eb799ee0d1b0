"""The initializer: dependency graph, scoping, module order and every startup error."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from host import (
    BackendStartupError,
    core_services,
    create_backend_module,
    create_backend_plugin,
    create_extension_point,
    create_service_factory,
    create_service_ref,
)
from host.backend import Backend
from host.config import Config
from host.defaults import create_backend
from host.features import StartupError
from tests.conftest import start_host


def make_backend(tmp_path: Path, features: list[Any], config: dict[str, Any] | None = None) -> Backend:
    overrides = {"backend": {"database": {"connection": {"directory": str(tmp_path)}}, "logger": {"level": "error"}}}
    if config:
        overrides["backend"].update(config)
    backend = create_backend(Config.load(overrides=overrides), discover=False)
    for feature in features:
        backend.add(feature)
    return backend


def plugin(
    plugin_id: str, deps: dict[str, Any] | None = None, init: Any = None, extension_points: list[tuple[Any, Any]] = ()
) -> Any:
    def register(reg: Any) -> None:
        for ep, impl in extension_points:
            reg.register_extension_point(ep, impl)
        reg.register_init(deps=deps or {}, init=init or (lambda **_: None))

    return create_backend_plugin(plugin_id, register)


def module(
    plugin_id: str,
    module_id: str,
    deps: dict[str, Any] | None = None,
    init: Any = None,
    extension_points: list[tuple[Any, Any]] = (),
) -> Any:
    def register(reg: Any) -> None:
        for ep, impl in extension_points:
            reg.register_extension_point(ep, impl)
        reg.register_init(deps=deps or {}, init=init or (lambda **_: None))

    return create_backend_module(plugin_id, module_id, register)


async def expect_failure(backend: Backend, *fragments: str) -> str:
    with pytest.raises(Exception) as info:
        await backend.start()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    await backend.stop()
    return message


async def test_duplicate_plugin(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, [plugin("alpha"), plugin("alpha")])
    await expect_failure(backend, "Plugin 'alpha' is already registered")


async def test_duplicate_module(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, [plugin("alpha"), module("alpha", "m1"), module("alpha", "m1")])
    await expect_failure(backend, "Module 'm1' for plugin 'alpha' is already registered")


async def test_duplicate_extension_point(tmp_path: Path) -> None:
    ep = create_extension_point("alpha.things")
    backend = make_backend(
        tmp_path, [plugin("alpha", extension_points=[(ep, [])]), plugin("beta", extension_points=[(ep, [])])]
    )
    await expect_failure(backend, "ExtensionPoint with ID 'alpha.things' is already registered")


async def test_missing_service_names_plugin_and_ref(tmp_path: Path) -> None:
    nowhere = create_service_ref("nowhere.service")
    backend = make_backend(tmp_path, [plugin("alpha", deps={"svc": nowhere})])
    await expect_failure(
        backend,
        "Service or extension point dependencies of plugin 'alpha' are missing for the following ref(s): "
        "serviceRef{nowhere.service}",
    )


async def test_missing_service_for_module(tmp_path: Path) -> None:
    nowhere = create_service_ref("nowhere.service")
    backend = make_backend(tmp_path, [plugin("alpha"), module("alpha", "m1", deps={"svc": nowhere})])
    await expect_failure(backend, "module 'm1' for plugin 'alpha' are missing", "serviceRef{nowhere.service}")


async def test_service_factory_cycle(tmp_path: Path) -> None:
    a = create_service_ref("cycle.a", "root")
    b = create_service_ref("cycle.b", "root")
    backend = make_backend(
        tmp_path,
        [
            create_service_factory(a, lambda b: "a", deps={"b": b}),
            create_service_factory(b, lambda a: "b", deps={"a": a}),
            plugin("alpha", deps={"a": a}),
        ],
    )
    message = await expect_failure(backend, "Circular dependencies detected:")
    assert "'cycle.a' -> 'cycle.b' -> 'cycle.a'" in message


async def test_module_cycle_through_extension_points(tmp_path: Path) -> None:
    x = create_extension_point("alpha.x")
    y = create_extension_point("alpha.y")
    backend = make_backend(
        tmp_path,
        [
            plugin("alpha"),
            module("alpha", "one", deps={"y": y}, extension_points=[(x, object())]),
            module("alpha", "two", deps={"x": x}, extension_points=[(y, object())]),
        ],
    )
    await expect_failure(backend, "Circular dependency detected for modules of plugin 'alpha'", "'one'", "'two'")


async def test_extension_point_of_another_plugin(tmp_path: Path) -> None:
    ep = create_extension_point("alpha.things")
    backend = make_backend(
        tmp_path,
        [
            plugin("alpha", extension_points=[(ep, [])]),
            plugin("beta"),
            module("beta", "sneaky", deps={"things": ep}),
        ],
    )
    await expect_failure(
        backend,
        "Illegal dependency: Module 'sneaky' for plugin 'beta' attempted to depend on extension point "
        "'alpha.things' for plugin 'alpha'",
    )


async def test_module_without_its_plugin(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, [plugin("alpha"), module("ghost", "orphan")])
    await expect_failure(backend, "Module 'orphan' for plugin 'ghost'", "'ghost'", "not installed")


async def test_register_init_must_be_called(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, [create_backend_plugin("lazy", lambda reg: None)])
    await expect_failure(backend, "register_init was not called by the register function of plugin 'lazy'")


def test_invalid_plugin_id() -> None:
    with pytest.raises(ValueError, match="Invalid pluginId '1abc'"):
        create_backend_plugin("1abc", lambda reg: None)


async def test_boot_failure_aborts_by_default_and_names_plugins(tmp_path: Path) -> None:
    def boom(**_: Any) -> None:
        raise RuntimeError("NOPE")

    backend = make_backend(tmp_path, [plugin("alpha", init=boom), plugin("beta", init=boom), plugin("gamma")])
    message = await expect_failure(backend, "Backend startup failed due to the following errors:")
    assert "Plugin 'alpha' startup failed; caused by RuntimeError: NOPE" in message
    assert "Plugin 'beta' startup failed; caused by RuntimeError: NOPE" in message
    assert "gamma" not in message


async def test_boot_failure_continue_per_plugin(tmp_path: Path) -> None:
    def boom(**_: Any) -> None:
        raise RuntimeError("NOPE")

    config = {"startup": {"plugins": {"alpha": {"onPluginBootFailure": "continue"}}}}
    backend = make_backend(tmp_path, [plugin("alpha", init=boom), plugin("beta")], config)
    result = await backend.start()
    assert result.outcome == "success"
    assert [p.plugin_id for p in result.plugins if p.failure] == ["alpha"]
    await backend.stop()

    strict = {
        "startup": {
            "default": {"onPluginBootFailure": "continue"},
            "plugins": {"alpha": {"onPluginBootFailure": "abort"}},
        }
    }
    backend = make_backend(tmp_path, [plugin("alpha", init=boom)], strict)
    await expect_failure(backend, "Plugin 'alpha' startup failed")


async def test_module_boot_failure_policy(tmp_path: Path) -> None:
    def boom(**_: Any) -> None:
        raise RuntimeError("BAD MODULE")

    ran: list[str] = []
    backend = make_backend(
        tmp_path, [plugin("alpha", init=lambda: ran.append("alpha")), module("alpha", "m", init=boom)]
    )
    await expect_failure(backend, "Module 'm' for plugin 'alpha' startup failed; caused by RuntimeError: BAD MODULE")
    assert ran == []  # the plugin does not start on top of a failed module

    config = {"startup": {"default": {"onPluginModuleBootFailure": "continue"}}}
    backend = make_backend(
        tmp_path, [plugin("alpha", init=lambda: ran.append("alpha")), module("alpha", "m", init=boom)], config
    )
    await backend.start()
    assert ran == ["alpha"]
    await backend.stop()


async def test_scoping_plugin_instances_distinct_root_shared(tmp_path: Path) -> None:
    built: list[str] = []
    root_ref = create_service_ref("test.root", "root")
    plugin_ref = create_service_ref("test.plugin", "plugin")
    contexts: list[int] = []

    def make_plugin_service(context: Any, meta: Any) -> dict[str, str]:
        built.append(meta.get_id())
        return {"owner": meta.get_id()}

    seen: dict[str, Any] = {}

    def capture(name: str) -> Any:
        def init(root: Any, scoped: Any, logger: Any, database: Any) -> None:
            seen[name] = (root, scoped, logger, database)

        return init

    deps = {"root": root_ref, "scoped": plugin_ref, "logger": core_services.logger, "database": core_services.database}
    backend = make_backend(
        tmp_path,
        [
            create_service_factory(root_ref, lambda: object()),
            create_service_factory(
                plugin_ref,
                make_plugin_service,
                create_root_context=lambda: contexts.append(1) or "ctx",
                deps={"meta": core_services.plugin_metadata},
            ),
            plugin("alpha", deps=deps, init=capture("alpha")),
            plugin("beta", deps=deps, init=capture("beta")),
        ],
    )
    await backend.start()
    assert seen["alpha"][0] is seen["beta"][0]
    assert seen["alpha"][1] is not seen["beta"][1]
    assert seen["alpha"][1] == {"owner": "alpha"} and seen["beta"][1] == {"owner": "beta"}
    assert sorted(built) == ["alpha", "beta"]
    assert contexts == [1]
    assert seen["alpha"][2] is not seen["beta"][2]
    assert seen["alpha"][3].plugin_id == "alpha" and seen["beta"][3].plugin_id == "beta"
    await backend.stop()


async def test_modules_run_before_plugin_and_extension_point_order(tmp_path: Path) -> None:
    order: list[str] = []
    things = create_extension_point("alpha.things")
    registry: list[str] = []
    provider_ep = create_extension_point("alpha.provider")

    async def slow_module(things: Any) -> None:
        await asyncio.sleep(0.05)
        things.append("slow")
        order.append("module:slow")

    def provider_init(things: Any) -> None:
        order.append(f"module:provider saw {sorted(things)}")

    async def consumer_init(provider: Any) -> None:
        await asyncio.sleep(0.05)  # slow on purpose: the provider must still wait
        order.append("module:consumer")

    backend = make_backend(
        tmp_path,
        [
            plugin(
                "alpha",
                deps={"logger": core_services.logger},
                init=lambda logger: order.append(f"plugin saw {sorted(registry)}"),
                extension_points=[(things, registry)],
            ),
            module("alpha", "slow", deps={"things": things}, init=slow_module),
            module("alpha", "fast", deps={"things": things}, init=lambda things: things.append("fast")),
            module(
                "alpha",
                "provider",
                deps={"things": things},
                init=provider_init,
                extension_points=[(provider_ep, object())],
            ),
            module("alpha", "consumer", deps={"provider": provider_ep}, init=consumer_init),
        ],
    )
    await backend.start()
    # every module finished before the plugin, which saw all contributions
    assert order[-1] == "plugin saw ['fast', 'slow']"
    # a module that provides an extension point runs after the modules that consume it
    provider_index = next(i for i, entry in enumerate(order) if entry.startswith("module:provider"))
    assert order.index("module:consumer") < provider_index
    await backend.stop()


async def test_plugins_start_concurrently(tmp_path: Path) -> None:
    gate = asyncio.Event()

    async def waits() -> None:
        await asyncio.wait_for(gate.wait(), 5)

    backend = make_backend(tmp_path, [plugin("waiter", init=waits), plugin("opener", init=gate.set)])
    await asyncio.wait_for(backend.start(), 10)
    await backend.stop()


async def test_add_after_start_and_double_start(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, [plugin("alpha")])
    await backend.start()
    with pytest.raises(RuntimeError, match="feature can not be added after the backend has started"):
        backend.add(plugin("beta"))
    with pytest.raises(RuntimeError, match="Backend has already started"):
        await backend.start()
    await backend.stop()
    await backend.stop()


async def test_duplicate_explicit_service_factory(tmp_path: Path) -> None:
    ref = create_service_ref("dup.service", "root")
    backend = make_backend(tmp_path, [create_service_factory(ref, lambda: 1)])
    with pytest.raises(Exception, match="Duplicate service implementations provided for dup.service"):
        backend.add(create_service_factory(ref, lambda: 2))
        await backend.start()


async def test_graph_errors_are_startup_errors_not_http_errors(tmp_path: Path) -> None:
    a = create_service_ref("c.a", "root")
    backend = make_backend(tmp_path, [create_service_factory(a, lambda a: 1, deps={"a": a})])
    with pytest.raises(StartupError) as info:
        await backend.start()
    assert not hasattr(info.value, "status_code")  # not a BackstageError (it used to be a 409 ConflictError)
    await backend.stop()


async def test_deps_key_without_init_parameter_names_plugin_and_key(tmp_path: Path) -> None:
    ran: list[str] = []
    backend = make_backend(
        tmp_path,
        [
            plugin("alpha", deps={"logr": core_services.logger}, init=lambda logger: ran.append("alpha")),
        ],
    )
    await expect_failure(backend, "plugin 'alpha'", "'logr'", "its parameters are: logger")
    assert backend.result is None and ran == []  # failed before any init ran


async def test_init_parameter_without_deps_key_names_module_and_parameter(tmp_path: Path) -> None:
    def init(logger: Any, router: Any) -> None:
        raise AssertionError("must not run")

    backend = make_backend(
        tmp_path,
        [
            plugin("alpha"),
            module("alpha", "m1", deps={"logger": core_services.logger}, init=init),
        ],
    )
    await expect_failure(backend, "module 'm1' for plugin 'alpha'", "requires parameter(s) 'router'")


async def test_init_with_defaults_or_var_keywords_is_accepted(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def with_default(logger: Any, extra: int = 3) -> None:
        seen["default"] = extra

    def with_kwargs(**deps: Any) -> None:
        seen["kwargs"] = sorted(deps)

    backend = make_backend(
        tmp_path,
        [
            plugin("alpha", deps={"logger": core_services.logger}, init=with_default),
            plugin(
                "beta", deps={"logger": core_services.logger, "lifecycle": core_services.lifecycle}, init=with_kwargs
            ),
        ],
    )
    await backend.start()
    assert seen == {"default": 3, "kwargs": ["lifecycle", "logger"]}
    await backend.stop()


def failing_startup_hook_plugin(plugin_id: str) -> Any:
    def init(lifecycle: Any) -> None:
        def boom() -> None:
            raise RuntimeError("hook broke")

        lifecycle.add_startup_hook(boom)

    return plugin(plugin_id, deps={"lifecycle": core_services.lifecycle}, init=init)


async def test_failing_startup_hook_fails_the_plugin(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, [failing_startup_hook_plugin("alpha"), plugin("beta")])
    message = await expect_failure(backend, "Plugin 'alpha' startup failed")
    assert "Startup hook of plugin 'alpha' failed: RuntimeError: hook broke" in message
    assert "beta" not in message


async def test_failing_startup_hook_with_continue_closes_the_plugins_routes() -> None:
    """Under ``continue`` the host starts, but the plugin whose hook failed answers 503 (it used to serve)."""

    class Ping:
        async def on_get(self, req: Any, resp: Any) -> None:
            resp.media = {"pong": True}

    def register(reg: Any) -> None:
        def init(router: Any, lifecycle: Any) -> None:
            router.add_route("/ping", Ping())
            router.add_auth_policy("/ping", allow="unauthenticated")

            def boom() -> None:
                raise RuntimeError("hook broke")

            lifecycle.add_startup_hook(boom)

        reg.register_init(deps={"router": core_services.http_router, "lifecycle": core_services.lifecycle}, init=init)

    config = {"backend": {"startup": {"plugins": {"alpha": {"onPluginBootFailure": "continue"}}}}}
    async with start_host(plugins=["auth"], config=config, features=[create_backend_plugin("alpha", register)]) as host:
        response = await host.client.get("/api/alpha/ping")
        assert response.status_code == 503
        assert response.json()["error"] == {
            "name": "ServiceUnavailableError",
            "message": "Plugin 'alpha' failed to start",
        }
        [alpha] = [p for p in host.backend.result.plugins if p.plugin_id == "alpha"]
        assert str(alpha.failure) == "Startup hook of plugin 'alpha' failed: RuntimeError: hook broke"


def test_register_messages_use_python_names() -> None:
    from host.features import Registrar

    reg = Registrar("plugin 'alpha'")
    reg.register_init(deps={}, init=lambda: None)
    with pytest.raises(StartupError, match="register_init must only be called once, by plugin 'alpha'"):
        reg.register_init(deps={}, init=lambda: None)
    with pytest.raises(StartupError, match="register_extension_point called after register_init by plugin 'alpha'"):
        reg.register_extension_point(create_extension_point("alpha.x"), [])


def test_startup_error_is_exported() -> None:
    assert BackendStartupError.name == "BackendStartupError"
