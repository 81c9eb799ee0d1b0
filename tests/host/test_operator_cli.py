"""What an operator sees from the ``greenroom`` CLI: config-check findings and errors they can act on."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from tests.conftest import PG_DSN, free_port, pip_install_target

GREENROOM = [sys.executable, "-m", "host.cli"]


def run(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 90
) -> subprocess.CompletedProcess[str]:
    """Run ``greenroom ARGS`` in ``cwd`` (the checkout stays importable through PYTHONPATH)."""
    full_env = {**os.environ, **(env or {})}
    paths = [p for p in (full_env.get("GR_EXTRA_SITE"), str(Path(__file__).resolve().parents[2])) if p]
    full_env["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run([*GREENROOM, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


def write(tmp_path: Path, config: dict[str, Any], name: str = "app-config.yaml") -> Path:
    """A config file with a private SQLite directory merged under ``config``."""
    base: dict[str, Any] = {"backend": {"database": {"connection": {"directory": str(tmp_path / "data")}}}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(_merge(base, config)))
    return path


def _merge(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    from host.config import deep_merge

    return deep_merge(base, other)


def check(tmp_path: Path, config: dict[str, Any] | str, *extra: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    if isinstance(config, str):
        path = tmp_path / "app-config.yaml"
        path.write_text(config)
    else:
        path = write(tmp_path, config)
    return run(["config", "check", "--config", str(path), *extra], cwd=tmp_path, **kwargs)


# -- config check findings -------------------------------------------------------------------------


def test_misspelled_top_level_key_is_a_warning_with_a_suggestion(tmp_path: Path) -> None:
    result = check(tmp_path, {"notifcations": {"retention": {"days": 3}}})
    assert result.returncode == 0, result.stderr
    assert "Unknown config key 'notifcations', did you mean 'notifications'?" in result.stderr
    assert "Config OK (1 warning)" in result.stdout


def test_misspelled_nested_keys_are_warnings_with_suggestions(tmp_path: Path) -> None:
    result = check(tmp_path, {"backend": {"listen": {"prot": 7007}, "database": {"pluginDivisonMode": "schema"}}})
    assert "Unknown config key 'backend.listen.prot', did you mean 'port'?" in result.stderr
    assert (
        "Unknown config key 'backend.database.pluginDivisonMode', did you mean 'pluginDivisionMode'?" in result.stderr
    )


def test_per_plugin_settings_for_a_plugin_that_does_not_run_are_warnings(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        {
            "backend": {
                "startup": {"plugins": {"notifcations": {"onPluginBootFailure": "continue"}}},
                "database": {"plugin": {"auth": {"skipMigrations": False}}},
            }
        },
    )
    assert result.returncode == 0, result.stderr
    assert (
        "Config key 'backend.startup.plugins.notifcations' names a plugin that is not installed or not enabled, "
        "did you mean 'notifications'?"
    ) in result.stderr
    assert "backend.database.plugin.auth" not in result.stderr


def test_types_enums_and_durations_are_errors(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        {
            "backend": {
                "workers": "two",
                "database": {"pluginDivisionMode": "schemas"},
                "lifecycle": {"shutdownTimeout": "forever"},
            },
            "events": {"bus": "kafka"},
            "notifications": {"retention": {"dayz": 3}},
        },
    )
    assert result.returncode == 1
    err = result.stderr
    assert "Invalid config at 'backend.workers': Input should be a valid integer" in err
    assert "Invalid config at 'backend.database.pluginDivisionMode': Input should be 'database' or 'schema'" in err
    assert "Invalid config at 'backend.lifecycle.shutdownTimeout': invalid duration" in err
    assert "Invalid config at 'events.bus': Input should be 'inprocess', 'postgres' or 'redis'" in err
    assert "Invalid config at 'notifications.retention': invalid duration: unknown duration part 'dayz'" in err
    assert "Config OK" not in result.stdout


def test_module_config_is_checked_by_the_module_schema(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        {
            "notifications": {
                "processors": {
                    "email": {
                        "sender": "greenroom@example.com",
                        "transportConfig": {"transport": "smtp", "hostname": "smtp", "port": 25, "secur": True},
                    }
                }
            }
        },
    )
    assert "Unknown config key 'notifications.processors.email.transportConfig.secur', did you mean 'secure'?" in (
        result.stderr
    )
    result = check(tmp_path, {"notifications": {"processors": {"email": {"transportConfig": {"transport": "pigeon"}}}}})
    assert result.returncode == 1
    assert "Missing required config value at 'notifications.processors.email.sender'" in result.stderr
    assert "notifications.processors.email.transportConfig" in result.stderr and "'pigeon'" in result.stderr


def test_missing_catalog_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text("apiVersion: backstage.io/v1alpha1\n")
    result = check(
        tmp_path,
        {
            "catalog": {
                "locations": [{"type": "file", "target": "./catalog.yaml"}, {"type": "file", "target": "./gone.yaml"}]
            }
        },
    )
    assert result.returncode == 1
    assert f"Invalid config at 'catalog.locations[1].target': catalog file not found: {tmp_path / 'gone.yaml'}" in (
        result.stderr
    )
    assert "locations[0]" not in result.stderr


def test_every_missing_env_var_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "app:\n  title: ${GR_MISSING_ONE}\nbackend:\n  auth:\n    externalAccess:\n"
        "      - type: static\n        options: {token: {$env: GR_MISSING_TWO}, subject: ci}\n"
        "  baseUrl: {$file: missing-secret.txt}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GR_MISSING")}
    result = run(["config", "check", "--config", str(_text(tmp_path, text))], cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "Environment variable 'GR_MISSING_ONE' is not set (config key 'app.title')" in result.stderr
    assert (
        "Environment variable 'GR_MISSING_TWO' is not set (config key 'backend.auth.externalAccess[0].options.token')"
    ) in result.stderr
    assert "Cannot read file" in result.stderr and "missing-secret.txt" in result.stderr
    assert result.stderr.count("Config error:") == 3


def _text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "app-config.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def bad_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two installed distributions: one whose entry point fails to import, one repeating plugin id 'signals'."""
    root = tmp_path_factory.mktemp("bad-dists")
    sources = []
    for dist, module, entry, code in (
        ("greenroom-test-broken", "gr_test_broken", "broken-plugin", "import gr_test_module_that_is_not_installed\n"),
        (
            "greenroom-test-copycat",
            "gr_test_copycat",
            "signals-copy",
            "from host import create_backend_plugin\n\n"
            "def _register(reg):\n    reg.register_init(deps={}, init=lambda: None)\n\n"
            "plugin = create_backend_plugin('signals', _register)\n",
        ),
    ):
        source = root / dist
        (source / module).mkdir(parents=True)
        (source / module / "__init__.py").write_text(code)
        (source / "pyproject.toml").write_text(
            f'[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
            f'[project]\nname = "{dist}"\nversion = "1.2.3"\n'
            f'[project.entry-points."greenroom.backend_features"]\n"{entry}" = "{module}:plugin"\n'
            f'[tool.setuptools]\npackages = ["{module}"]\n'
        )
        sources.append(source)
    return pip_install_target(root / "site", *sources)


def test_entry_point_import_error_names_the_distribution(tmp_path: Path, bad_site: Path) -> None:
    result = check(tmp_path, {}, env={"GR_EXTRA_SITE": str(bad_site)})
    assert result.returncode == 1
    assert (
        "Cannot load entry point 'broken-plugin' of distribution 'greenroom-test-broken 1.2.3' "
        "(gr_test_broken:plugin): ModuleNotFoundError: No module named 'gr_test_module_that_is_not_installed'"
    ) in result.stderr
    # excluded, it is not an error any more
    result = check(
        tmp_path,
        {"backend": {"features": {"exclude": ["broken-plugin", "signals-copy"]}}},
        env={"GR_EXTRA_SITE": str(bad_site)},
    )
    assert result.returncode == 0, result.stderr


def test_duplicate_plugin_id_names_both_distributions(tmp_path: Path, bad_site: Path) -> None:
    config = {"backend": {"features": {"exclude": ["broken-plugin"]}}}
    expected = (
        "Plugin 'signals' is provided twice: by entry point 'signals' of distribution 'greenroom 0.1.0' "
        "and by entry point 'signals-copy' of distribution 'greenroom-test-copycat 1.2.3'"
    )
    result = check(tmp_path, config, env={"GR_EXTRA_SITE": str(bad_site)})
    assert result.returncode == 1
    assert expected in result.stderr
    # and starting (here: migrate) fails with the same message, without a traceback
    result = run(
        ["migrate", "--config", str(write(tmp_path, config))], cwd=tmp_path, env={"GR_EXTRA_SITE": str(bad_site)}
    )
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


# -- connection failures -----------------------------------------------------------------------------


def _pg(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "backend": {
            "database": {
                "client": "pg",
                "connection": {"host": "127.0.0.1", "port": port, "user": "postgres", "database": "test"},
                **extra,
            }
        }
    }


def test_config_check_connect_reports_unreachable_database_and_bus(tmp_path: Path) -> None:
    port = free_port()
    config = _merge(_pg(port), {"backend": {"features": {"include": ["auth"]}}})
    assert check(tmp_path, config).returncode == 0  # without --connect nothing is dialled
    result = check(tmp_path, config, "--connect")
    assert result.returncode == 1
    assert (
        f"Config error: Plugin 'auth' cannot connect to PostgreSQL at 127.0.0.1:{port}, database "
        f"'greenroom_plugin_auth' as user 'postgres': connection refused. Is PostgreSQL running and listening "
        "there? Check the host and port in backend.database.connection."
    ) in result.stderr
    assert f"The events bus cannot connect to PostgreSQL at 127.0.0.1:{port}, database 'test'" in result.stderr

    redis_port = free_port()
    result = check(
        tmp_path,
        {
            "backend": {"features": {"include": ["auth"]}},
            "events": {"bus": "redis", "redis": {"url": f"redis://127.0.0.1:{redis_port}/0"}},
        },
        "--connect",
    )
    assert result.returncode == 1
    assert (
        f"The events bus cannot connect to Redis at 127.0.0.1:{redis_port}: connection refused. Is Redis "
        "running and listening there? Check the host and port in events.redis.url."
    ) in result.stderr


@pytest.mark.postgres
def test_config_check_connect_passes_against_the_real_servers(tmp_path: Path) -> None:
    config = _merge(
        _pg(5432, pluginDivisionMode="schema", prefix=f"gr_{uuid.uuid4().hex[:8]}_"),
        {
            "backend": {"features": {"include": ["auth"]}},
            "events": {"bus": "redis", "redis": {"url": "redis://127.0.0.1:6379/0"}},
        },
    )
    result = check(tmp_path, config, "--connect")
    assert result.returncode == 0, result.stderr
    _drop_schemas(config["backend"]["database"]["prefix"])


def test_migrate_with_a_wrong_postgres_port_is_one_short_message(tmp_path: Path) -> None:
    port = free_port()
    result = run(["migrate", "--config", str(write(tmp_path, _pg(port)))], cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        f"Migration failed: The events bus cannot connect to PostgreSQL at 127.0.0.1:{port}, database 'test' "
        "as user 'postgres': connection refused."
    ) in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr
    # the traceback is there at debug level
    debug = run(
        ["migrate", "--config", str(write(tmp_path, _merge(_pg(port), {"backend": {"logger": {"level": "debug"}}})))],
        cwd=tmp_path,
    )
    assert "Traceback" in debug.stderr and "ConnectionRefusedError" in debug.stderr


def test_migrate_with_an_unreachable_redis_bus_is_one_short_message(tmp_path: Path) -> None:
    port = free_port()
    config = {
        "backend": {"features": {"include": ["auth"]}},
        "events": {"bus": "redis", "redis": {"url": f"redis://:bus-password@127.0.0.1:{port}/0"}},
    }
    result = run(["migrate", "--config", str(write(tmp_path, config))], cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "bus-password" not in result.stderr
    assert (
        f"Migration failed: The events bus cannot connect to Redis at 127.0.0.1:{port}: connection refused. "
        "Is Redis running and listening there? Check the host and port in events.redis.url."
    ) in result.stderr


def test_an_sqlite_directory_that_cannot_be_created_is_one_short_message(tmp_path: Path) -> None:
    (tmp_path / "not-a-directory").write_text("")
    directory = tmp_path / "not-a-directory" / "data"
    config = write(
        tmp_path,
        {"backend": {"features": {"include": ["auth"]}, "database": {"connection": {"directory": str(directory)}}}},
    )
    expected = (
        f"Cannot create the SQLite data directory '{directory}': Not a directory. Check "
        "backend.database.connection.directory"
    )
    for command in (["migrate"], ["start", "--port", str(free_port())]):
        result = run([*command, "--config", str(config)], cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert expected in result.stderr
        assert "Traceback" not in result.stderr


def test_start_with_a_wrong_postgres_port_logs_one_short_message(tmp_path: Path) -> None:
    port = free_port()
    result = run(["start", "--config", str(write(tmp_path, _pg(port))), "--port", str(free_port())], cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert (
        f"Backend startup failed: The events bus cannot connect to PostgreSQL at 127.0.0.1:{port}, database "
        "'test' as user 'postgres': connection refused."
    ) in result.stderr
    assert len(result.stderr.strip().splitlines()) < 20, result.stderr


@pytest.mark.postgres
def test_migrate_in_schema_mode_creates_the_missing_database(tmp_path: Path) -> None:
    name = f"gr_ops_{uuid.uuid4().hex[:8]}"
    config = _merge(
        _pg(5432, pluginDivisionMode="schema", prefix=f"{name}_"),
        {"backend": {"features": {"include": ["auth"]}}, "events": {"bus": "inprocess"}},
    )
    config["backend"]["database"]["connection"]["database"] = name
    try:
        result = run(["migrate", "--config", str(write(tmp_path, config))], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert _fetch(name, "SELECT nspname FROM pg_namespace WHERE nspname = $1", f"{name}_auth")
    finally:
        _execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_migrate_in_schema_mode_explains_a_database_it_cannot_create(tmp_path: Path) -> None:
    name = f"gr_ops_{uuid.uuid4().hex[:8]}"
    _execute(f'CREATE ROLE "{name}" LOGIN NOCREATEDB')
    config = _merge(
        _pg(5432, pluginDivisionMode="schema", prefix=f"{name}_"),
        {"backend": {"features": {"include": ["auth"]}}, "events": {"bus": "inprocess"}},
    )
    config["backend"]["database"]["connection"].update(database=name, user=name)
    try:
        result = run(["migrate", "--config", str(write(tmp_path, config))], cwd=tmp_path)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert (
            f"Migration failed: Plugin 'auth' cannot connect to PostgreSQL at 127.0.0.1:5432, database '{name}' "
            f"as user '{name}': the database does not exist. Create it (createdb -h 127.0.0.1 -p 5432 {name}, "
            f"as a user allowed to), give user '{name}' the CREATEDB privilege"
        ) in result.stderr
    finally:
        _execute(f'DROP ROLE IF EXISTS "{name}"')


def _execute(sql: str) -> None:
    import asyncio

    async def go() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def _fetch(database: str, sql: str, *args: Any) -> Any:
    import asyncio

    async def go() -> Any:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=database)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def _drop_schemas(prefix: str) -> None:
    import asyncio

    from tests.conftest import drop_pg_schemas

    asyncio.run(drop_pg_schemas(prefix))
