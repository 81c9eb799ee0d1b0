"""Fixtures of the compatibility suite: a Greenroom host set up like the Backstage peer.

The host gets the peer's catalog (``fixtures/org.yaml`` plus the generated
``big-group`` of 1,000 users, written as the peer's ``gen-users.js`` writes
it), its static token with subject ``bench`` (so ``origin`` is ``bench`` on
both) and the guest sign-in as ``user:default/guest``. It also has Backstage's
usual ``backend.cors`` (:data:`tests.compat.peer.CORS_CONFIG`), which the peer
lacks: the CORS cases are recorded from Backstage's CORS middleware instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compat.peer import CORS_CONFIG, peer_target
from tests.compat.runner import Target
from tests.fuzz.conftest import BackgroundHost

FIXTURES = Path(__file__).parent / "fixtures"
#: The peer's static token and subject (../shared/backstage-peer/app-config.yaml).
BENCH_TOKEN = "bench-static-token-0123456789abcdef"
BIG_GROUP_SIZE = 1000


def generated_users(count: int = BIG_GROUP_SIZE) -> str:
    """``generated-users.yaml`` byte for byte as the peer's ``gen-users.js`` writes it."""
    docs = [
        f"apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: big-group\n"
        f"  description: Generated group with {count} members\nspec:\n  type: team\n  children: []\n"
    ]
    for number in range(1, count + 1):
        name = f"perf-user-{number:04d}"
        docs.append(
            f"apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: {name}\nspec:\n"
            f"  profile:\n    displayName: Perf User {number}\n    email: {name}@example.com\n"
            f"  memberOf: [big-group]\n"
        )
    return "---\n".join(docs)


def compat_config(catalog_dir: Path) -> dict[str, Any]:
    """Greenroom config mirroring the peer's app-config.yaml."""
    return {
        "app": {"baseUrl": "http://127.0.0.1:3000"},
        "backend": {
            "auth": {"externalAccess": [{"type": "static", "options": {"token": BENCH_TOKEN, "subject": "bench"}}]},
            "cors": CORS_CONFIG,
        },
        "auth": {"providers": {"guest": {"userEntityRef": "user:default/guest"}}},
        "catalog": {
            "locations": [
                {"type": "file", "target": str(catalog_dir / "org.yaml")},
                {"type": "file", "target": str(catalog_dir / "generated-users.yaml")},
            ]
        },
    }


@pytest.fixture(scope="session")
def compat_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the peer's two catalog files."""
    directory = tmp_path_factory.mktemp("compat") / "catalog"
    directory.mkdir()
    shutil.copy(FIXTURES / "org.yaml", directory / "org.yaml")
    (directory / "generated-users.yaml").write_text(generated_users())
    return directory


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def greenroom(request: pytest.FixtureRequest, compat_catalog: Path) -> Iterator[Target]:
    """A Greenroom host configured like the peer, once per module and database."""
    host = BackgroundHost(str(request.param), compat_config(compat_catalog))
    try:
        yield Target(f"greenroom-{request.param}", host.handle.url, BENCH_TOKEN, catalog_dir=str(compat_catalog))
    finally:
        host.close()


@pytest.fixture(scope="session")
def backstage() -> Target:
    """The live Backstage (``BACKSTAGE_PEER_URL``); the tests that need it skip without it."""
    target = peer_target()
    if target is None:
        pytest.skip("BACKSTAGE_PEER_URL is not set: comparing with the recorded Backstage answers only")
    return target
