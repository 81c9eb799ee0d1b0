"""Config loading: merging, ${ENV} substitution, typed reads and durations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from host.config import Config, ConfigError, parse_duration


def test_files_merge_in_order_and_env_is_substituted(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("app:\n  title: Base\n  list: [1, 2]\nbackend:\n  listen:\n    port: 7007\n")
    local = tmp_path / "local.yaml"
    local.write_text("app:\n  list: [3]\n  url: http://${HOST_NAME}:${PORT}\n  literal: $${NOT_A_VAR}\n")
    config = Config.load([base, local], include_defaults=False, env={"HOST_NAME": "example", "PORT": "80"})
    assert config.get_string("app.title") == "Base"
    assert config.get("app.list") == [3]
    assert config.get_string("app.url") == "http://example:80"
    assert config.get_string("app.literal") == "${NOT_A_VAR}"
    assert config.get_number("backend.listen.port") == 7007


def test_missing_env_names_the_variable_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("backend:\n  auth:\n    secret: ${SECRET_X}\n")
    with pytest.raises(ConfigError, match="SECRET_X.*backend.auth.secret"):
        Config.load([path], include_defaults=False, env={})


def test_typed_reads_fail_clearly() -> None:
    config = Config({"a": {"n": "x", "flag": "true", "b": True}})
    with pytest.raises(ConfigError, match="Invalid type in config for key 'a.n'"):
        config.get_number("a.n")
    assert config.get_optional_boolean("a.flag") is True
    with pytest.raises(ConfigError, match="wanted string"):
        config.get_string("a.b")
    with pytest.raises(ConfigError, match="Missing required config value at 'a.zzz'"):
        config.get("a.zzz")
    assert config.get_config("a").get_optional("n") == "x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"days": 30}, timedelta(days=30)),
        ({"years": 1}, timedelta(days=365)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("30 days", timedelta(days=30)),
        ("1y", timedelta(days=365)),
        (500, timedelta(milliseconds=500)),
    ],
)
def test_durations(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


def test_bad_duration() -> None:
    with pytest.raises(ValueError):
        parse_duration("soon")
    with pytest.raises(ConfigError, match="Invalid duration at 'x'"):
        Config({"x": {"fortnights": 2}}).get_optional_duration("x")


# -- paths relative to the config file ------------------------------------------------


def test_paths_resolve_against_the_config_file_that_set_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "local").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "base" / "secret.txt").write_text("from-base")
    (tmp_path / "base" / "app-config.yaml").write_text(
        "catalog:\n  locations:\n    - {type: file, target: ./org.yaml}\n"
        "backend:\n  controlSocket: run/greenroom.ctl\n  baseUrl: {$file: secret.txt}\n"
    )
    (tmp_path / "local" / "app-config.local.yaml").write_text("backend:\n  controlSocket: ../sockets/gr.ctl\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = Config.load(
        [Path("../base/app-config.yaml"), Path("../local/app-config.local.yaml")],
        overrides={"backend": {"database": {"connection": {"directory": "data"}}}},
    )
    [location] = config.get_config_list("catalog.locations")
    assert location.get_optional_path("target") == (tmp_path / "base" / "org.yaml").resolve()
    assert config.get_optional_path("backend.controlSocket") == (tmp_path / "local").resolve() / "../sockets/gr.ctl"
    assert config.get_string("backend.baseUrl") == "from-base"  # $file: next to its config file
    # overrides and the embedded defaults are relative to the working directory
    assert config.get_optional_path("backend.database.connection.directory") == tmp_path / "elsewhere" / "data"
    assert config.get_optional_path("absent.key") is None
    assert Config.load([]).get_optional_path("backend.database.connection.directory") == (
        tmp_path / "elsewhere" / ".greenroom" / "data"
    )
