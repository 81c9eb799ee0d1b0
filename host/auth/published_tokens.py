"""Static tokens published in Greenroom's repository, refused in production.

The development config, the docs, the tests and the benchmarks carry static
tokens in plain text. Anyone can read them, so a production host
(``auth.environment: production``) refuses to start with any of them in
``backend.auth.externalAccess``. ``tests/host/test_published_tokens.py``
checks that every static token in the repository's configs and docs is here.
"""

from __future__ import annotations

#: Every static token that appears in this repository.
PUBLISHED_TOKENS: frozenset[str] = frozenset(
    {
        "dev-service-token-change-me",  # app-config.local.yaml, README, docs
        "test-service-token-0123456789",  # tests/conftest.py
        "bench-service-token-0123456789",  # bench/signals.py
        "bench-notifications-token-0123456789",  # bench/notifications.py
        "bench-run-token-0123456789",  # bench/run.py (removed; the token stays in the history)
        "bench-delivery-token-0123456789",  # bench/delivery.py
        "bench-static-token-0123456789abcdef",  # the Backstage reference backend used by the benches
    }
)


def is_published(token: str) -> bool:
    """Whether ``token`` is one of the tokens published in the repository."""
    return token in PUBLISHED_TOKENS
