"""The ``hello`` plugin: greets the signed-in user with a notification and a signal.

* ``POST /api/hello/greet`` with ``{"language": "fr"}`` (optional, default
  ``en``) sends the caller a notification and publishes ``{"greeting": ...}``
  on the signals channel ``hello`` to them; it answers ``{"greeting": ...}``.
* ``GET /api/hello/languages`` lists the known languages, without credentials.

Modules of this plugin add greetings through :data:`greetings_extension_point`.
"""

from __future__ import annotations

from typing import Any

from host import (
    HttpAuthService,
    HttpRouterService,
    InputError,
    LoggerService,
    Registrar,
    SignalsService,
    UserPrincipal,
    core_services,
    create_backend_plugin,
    create_extension_point,
    signals_service_ref,
)
from plugin_notifications import NotificationService, notification_service_ref

SIGNAL_CHANNEL = "hello"


# -- start extension-point --
class Greetings:
    """The plugin's registry of greetings: what its modules receive for ``hello.greetings``."""

    def __init__(self) -> None:
        self._words = {"en": "Hello"}

    def add(self, language: str, word: str) -> None:
        """Greet in ``language`` with ``word``."""
        if language in self._words:
            raise ValueError(f"A greeting for '{language}' is already registered")
        self._words[language] = word

    def word(self, language: str) -> str | None:
        """The greeting for ``language``, if there is one."""
        return self._words.get(language)

    def languages(self) -> list[str]:
        """Every known language."""
        return sorted(self._words)


#: Modules of plugin ``hello`` depend on this to add greetings.
greetings_extension_point = create_extension_point("hello.greetings")
# -- end extension-point --


# -- start resources --
class GreetResource:
    """``POST /greet``: notify and signal the caller."""

    def __init__(
        self,
        http_auth: HttpAuthService,
        notifications: NotificationService,
        signals: SignalsService,
        greetings: Greetings,
    ) -> None:
        self._http_auth = http_auth
        self._notifications = notifications
        self._signals = signals
        self._greetings = greetings

    async def on_post(self, req: Any, resp: Any) -> None:
        """Greet the signed-in user in the requested language."""
        credentials = await self._http_auth.credentials(req, allow=["user"])
        assert isinstance(credentials.principal, UserPrincipal)  # allow=["user"] let only users through
        user_ref = credentials.principal.user_entity_ref
        body = await req.get_media(default_when_empty={})
        language = body.get("language", "en") if isinstance(body, dict) else None
        word = self._greetings.word(language) if isinstance(language, str) else None
        if word is None:
            raise InputError(f"Unknown language {language!r}; known: {', '.join(self._greetings.languages())}")
        greeting = f"{word}, {user_ref.rpartition('/')[2]}!"
        await self._notifications.send(
            recipients={"type": "entity", "entityRef": user_ref},
            payload={"title": greeting, "topic": "greetings"},
        )
        await self._signals.publish(
            recipients={"type": "user", "entityRef": user_ref},
            channel=SIGNAL_CHANNEL,
            message={"greeting": greeting},
        )
        resp.media = {"greeting": greeting}


class LanguagesResource:
    """``GET /languages``: the known languages."""

    def __init__(self, greetings: Greetings) -> None:
        self._greetings = greetings

    async def on_get(self, req: Any, resp: Any) -> None:
        """List the languages."""
        resp.media = {"languages": self._greetings.languages()}


# -- end resources --


# -- start plugin --
def _register(reg: Registrar) -> None:
    greetings = Greetings()
    reg.register_extension_point(greetings_extension_point, greetings)

    def init(
        router: HttpRouterService,
        http_auth: HttpAuthService,
        logger: LoggerService,
        notifications: NotificationService,
        signals: SignalsService,
    ) -> None:
        router.add_route("/greet", GreetResource(http_auth, notifications, signals, greetings))
        router.add_route("/languages", LanguagesResource(greetings))
        router.add_auth_policy("/languages", allow="unauthenticated")
        logger.info("hello plugin ready", languages=",".join(greetings.languages()))

    reg.register_init(
        deps={
            "router": core_services.http_router,
            "http_auth": core_services.http_auth,
            "logger": core_services.logger,
            "notifications": notification_service_ref,
            "signals": signals_service_ref,
        },
        init=init,
    )


#: The ``hello`` backend plugin (``/api/hello``).
hello_plugin = create_backend_plugin("hello", _register)
# -- end plugin --
