"""Sign-in hooks of the ``auth`` plugin (pluggy project ``greenroom.auth``): "pick exactly one" slots.

Both hooks are ``firstresult``: the first implementation returning a value
decides; ``None`` lets the next one decide. Implementations may be ``async``
(an async implementation always decides). Modules of plugin ``auth``
register them through the extension point ``auth.signInResolver``:
``sign_in.add_resolver(obj)`` for an object with ``@auth_hookimpl`` methods,
or ``set_ownership_resolver(fn)`` / ``set_user_lookup(fn)`` (once each).
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "greenroom.auth"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
auth_hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec(firstresult=True)
def auth_resolve_ownership(user_entity_ref: str) -> list[str] | None:
    """The ownership refs of a user signing in (the user's own ref is always added).

    Use in sign-in modules: optional; without an answer a user owns only their ref.
    Stops at the first non-``None`` result.
    """


@hookspec(firstresult=True)
def auth_user_exists(user_entity_ref: str) -> bool | None:
    """Whether the user exists (the proxy provider signs in only known users).

    Use in sign-in modules: optional; without an answer the proxy provider
    refuses unknown users unless ``allowUnknownUsers: true``.
    Stops at the first non-``None`` result.
    """
