"""Email template hooks (pluggy project ``greenroom.notifications.email``): "pick exactly one" slots.

Each hook is ``firstresult``: the first implementation that returns a value
decides that part of the email; returning ``None`` lets the next one (and
finally the default) decide. ``@email_hookimpl(tryfirst=True)`` puts an
implementation first. Implementations may be ``async`` (an async one always
decides: its coroutine is the result; if it then returns ``None`` the default
is used).

Register an object with these hooks through the extension point
``notifications.email.templates`` (``templates.add_renderer(obj)``), or set a
Backstage-style renderer with ``get_subject``/``get_text``/``get_html``
methods through ``templates.set_template_renderer(obj)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from plugin_notifications import Notification

PROJECT_NAME = "greenroom.notifications.email"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
email_hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec(firstresult=True)
def email_subject(notification: Notification) -> str | None:
    """The subject of the emails for ``notification`` (default: its title).

    Use in renderers: optional. Stops at the first non-``None`` result.
    """


@hookspec(firstresult=True)
def email_text(notification: Notification) -> str | None:
    """The plain-text body (default: the description, a blank line, the link).

    Use in renderers: optional. Stops at the first non-``None`` result.
    """


@hookspec(firstresult=True)
def email_html(notification: Notification) -> str | None:
    """The HTML body (default: a description paragraph and an anchor to the link).

    Use in renderers: optional. Stops at the first non-``None`` result.
    """
