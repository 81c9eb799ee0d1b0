"""Paths in config resolve against the directory of the config file that set them, whatever the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from host import user_directory_ref
from host.auth.keys import generate_private_pem
from host.config import Config
from host.defaults import create_backend
from host.services import core_services
from tests.host.test_operator_cli import run

USER = "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: jane}\nspec: {memberOf: []}\n"


def deployment(tmp_path: Path) -> Path:
    """``conf/app-config.yaml`` naming a catalog file, a key file and a data directory, all relative to it."""
    conf = tmp_path / "conf"
    (conf / "catalog").mkdir(parents=True)
    (conf / "keys").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (conf / "catalog" / "org.yaml").write_text(USER)
    (conf / "keys" / "signing.pem").write_text(generate_private_pem())
    config = {
        "catalog": {"locations": [{"type": "file", "target": "catalog/org.yaml"}]},
        "auth": {
            "keyStore": {
                "provider": "static",
                "static": {"keys": [{"keyId": "k1", "privateKeyFile": "keys/signing.pem"}]},
            }
        },
        "backend": {"database": {"connection": {"directory": "data"}}, "logger": {"level": "error"}},
    }
    path = conf / "app-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_config_check_from_another_directory(tmp_path: Path) -> None:
    deployment(tmp_path)
    result = run(["config", "check", "--config", "../conf/app-config.yaml"], cwd=tmp_path / "elsewhere")
    assert result.returncode == 0, result.stderr
    (tmp_path / "conf" / "catalog" / "org.yaml").unlink()
    result = run(["config", "check", "--config", "../conf/app-config.yaml"], cwd=tmp_path / "elsewhere")
    assert result.returncode == 1
    assert f"catalog file not found: {tmp_path / 'conf' / 'catalog' / 'org.yaml'}" in result.stderr


async def test_a_backend_started_elsewhere_reads_paths_next_to_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment(tmp_path)
    monkeypatch.chdir(tmp_path / "elsewhere")
    include = {"backend": {"features": {"include": ["auth", "catalog"]}}}
    backend = create_backend(Config.load(["../conf/app-config.yaml"], overrides=include))
    await backend.start()
    try:
        directory = await backend.get_service(user_directory_ref, "test")
        assert await directory.get_entity_by_ref("user:default/jane") is not None  # conf/catalog/org.yaml
        tokens = await backend.get_service(core_services.root_auth)
        assert [key["kid"] for key in (await tokens.jwks())["keys"]] == ["k1"]  # conf/keys/signing.pem
        assert (tmp_path / "conf" / "data" / "catalog.sqlite").is_file()  # conf/data
        assert not (tmp_path / "elsewhere" / "data").exists()
    finally:
        await backend.stop()
