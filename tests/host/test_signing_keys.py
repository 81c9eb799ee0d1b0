"""Signing keys at rest: private database files, keys from config, and no key reloads per unknown kid."""

from __future__ import annotations

import asyncio
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy as sa
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from host import core_services
from host.auth.keys import generate_private_pem
from host.config import Config
from tests.conftest import HostHandle, start_host


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_sqlite_files_are_private_to_the_owner(tmp_path: Path) -> None:
    """New databases are 0600 in a 0700 directory; an existing world-readable file is tightened."""
    data = tmp_path / "new" / "data"
    async with start_host(plugins=["auth"], data_dir=str(data)) as host:
        await host.client.post("/api/auth/guest/refresh")
        files = sorted(data.iterdir())
        assert any(f.name == "auth.sqlite" for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(data) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "auth.sqlite").touch(mode=0o644)
    (loose / "auth.sqlite").chmod(0o644)
    async with start_host(plugins=["auth"], data_dir=str(loose)):
        assert mode(loose / "auth.sqlite") == 0o600


def user_token(private: Any, kid: str, sub: str = "user:default/jane") -> str:
    now = int(time.time())
    claims = {"sub": sub, "ent": [sub], "aud": "backstage", "iat": now, "exp": now + 600}
    return jwt.encode(claims, private, algorithm="ES256", headers={"typ": "vnd.backstage.user", "kid": kid})


async def test_signing_key_from_config_files(tmp_path: Path) -> None:
    """``auth.keyStore.provider: static``: the first key signs, every key verifies, nothing goes to the database."""
    signing_pem = generate_private_pem()
    (tmp_path / "signing.pem").write_text(signing_pem)
    previous = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "previous.pub.pem").write_bytes(
        previous.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    config_file = tmp_path / "keys.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "auth": {
                    "keyStore": {
                        "provider": "static",
                        "static": {
                            "keys": [
                                {"keyId": "primary", "privateKey": {"$file": "signing.pem"}},
                                {"keyId": "previous", "publicKeyFile": str(tmp_path / "previous.pub.pem")},
                            ]
                        },
                    }
                }
            }
        )
    )
    keys = Config.load([config_file], include_defaults=False).as_dict()
    data = tmp_path / "data"
    async with start_host(plugins=["auth"], config=keys, data_dir=str(data)) as host:
        token = (await host.client.post("/api/auth/guest/refresh")).json()["backstageIdentity"]["token"]
        assert jwt.get_unverified_header(token)["kid"] == "primary"
        public = serialization.load_pem_private_key(signing_pem.encode(), password=None).public_key()
        assert jwt.decode(token, public, algorithms=["ES256"], audience="backstage")["sub"] == "user:default/guest"
        jwks = (await host.client.get("/api/auth/.well-known/jwks.json")).json()
        assert [key["kid"] for key in jwks["keys"]] == ["primary", "previous"]
        rotated = user_token(previous, "previous")
        info = await host.client.get("/api/auth/v1/userinfo", headers={"Authorization": f"Bearer {rotated}"})
        assert info.status_code == 200 and info.json()["claims"]["sub"] == "user:default/jane"
        assert not (data / "auth.sqlite").exists()  # the key is not copied into a database


async def count_key_reads(host: HostHandle, requests: int) -> tuple[list[int], list[str]]:
    """Send ``requests`` user tokens with unknown kids; return the statuses and the auth database's statements."""
    databases = await host.backend.get_service(core_services.root_database)
    engine = await databases.for_plugin("auth").get_engine()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    stranger = ec.generate_private_key(ec.SECP256R1())
    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        responses = await asyncio.gather(
            *(
                host.client.get(
                    "/api/auth/v1/userinfo",
                    headers={"Authorization": f"Bearer {user_token(stranger, str(uuid.uuid4()))}"},
                )
                for _ in range(requests)
            )
        )
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    return [r.status_code for r in responses], statements


async def test_unknown_kids_do_not_reload_keys_per_request(db_kind: str) -> None:
    # a reload interval no busy machine outlasts: the one reload allowed is the throttle's, not the clock's
    config = {"auth": {"keyStore": {"reloadInterval": {"minutes": 10}}}}
    async with start_host(db_kind, plugins=["auth"], config=config) as host:
        await host.client.post("/api/auth/guest/refresh")  # keys loaded at startup
        statuses, statements = await count_key_reads(host, 200)
        assert set(statuses) == {401}
        # at most one reload of the key table (no migrations) for 200 tokens with 200 different kids
        assert len([s for s in statements if "signing_keys" in s]) <= 1, statements
        assert not [s for s in statements if "alembic" in s.lower()], statements


async def test_hosts_booting_together_share_one_signing_key() -> None:
    """Two hosts on one PostgreSQL starting at once create one key, and each accepts the other's tokens at once.

    Without a lock around "no key yet: create one", two workers of a fresh ``greenroom start
    --workers 2`` could each create a key, and one that had read the table before the other's key
    existed rejected that worker's tokens ("Illegal token") until its next reload. In one process
    the race rarely shows; this pins the invariant the lock guarantees.
    """
    import contextlib

    prefix = f"gr_{uuid.uuid4().hex[:8]}_"
    async with contextlib.AsyncExitStack() as stack:
        contexts = [start_host("postgres", plugins=["auth"], prefix=prefix) for _ in range(2)]
        hosts: list[HostHandle] = list(await asyncio.gather(*(stack.enter_async_context(c) for c in contexts)))
        jwks = [(await host.client.get("/api/auth/.well-known/jwks.json")).json()["keys"] for host in hosts]
        assert len(jwks[0]) == 1 and jwks[0] == jwks[1]
        tokens = [
            (await host.client.post("/api/auth/guest/refresh")).json()["backstageIdentity"]["token"] for host in hosts
        ]
        for host, token in ((hosts[0], tokens[1]), (hosts[1], tokens[0])):
            answer = await host.client.get("/api/auth/v1/userinfo", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text


async def test_the_auth_plugin_hands_over_its_database_and_without_it_tokens_fail_fast(tmp_path: Path) -> None:
    """The signing keys live in the auth plugin's own database (given by its init), not a name in the host."""
    from host.defaults import create_backend
    from host.errors import ServiceUnavailableError

    overrides = {"backend": {"database": {"connection": {"directory": str(tmp_path)}}, "logger": {"level": "error"}}}
    backend = create_backend(Config.load(overrides=overrides), discover=False)
    await backend.start()
    try:
        tokens = await backend.get_service(core_services.root_auth)
        started = time.monotonic()
        try:
            await asyncio.wait_for(tokens.issue_user_token("user:default/jane", ["user:default/jane"]), 2)
        except ServiceUnavailableError as error:
            assert "No signing keys" in str(error)
        else:
            raise AssertionError("a token was issued without a key store")
        assert time.monotonic() - started < 1
        assert not (tmp_path / "auth.sqlite").exists()
    finally:
        await backend.stop()
