"""``notification_service_ref``: how other plugins send notifications.

A plugin adds the ref to its ``deps`` (nothing needs registering; the ref
has a default factory) and calls::

    await notifications.send(
        recipients={"type": "entity", "entityRef": "group:default/team-a"},
        payload={"title": "Deploy finished", "link": "/catalog/default/component/api"},
    )

The notification's origin is the calling plugin (``plugin:<pluginId>``).
When the notifications plugin runs in the same backend the call stays
in-process, waiting while the plugin's init runs (and failing at once with
:class:`host.errors.ServiceUnavailableError` if the plugin failed to start);
otherwise it is a
``POST`` to the notifications plugin found through discovery, with a
plugin-to-plugin token, exactly like Backstage's ``DefaultNotificationService``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from host import (
    Provided,
    ServiceFactory,
    ServiceRef,
    core_services,
    create_provided_ref,
    create_service_factory,
    create_service_ref,
)
from plugin_notifications.idempotency import HEADER as IDEMPOTENCY_HEADER
from plugin_notifications.idempotency import IdempotencyKeys, check_key, header_value
from plugin_notifications.sender import NotificationSender

if TYPE_CHECKING:
    import httpx

PLUGIN_ID = "notifications"

#: The notifications plugin provides its :class:`NotificationSender` here at the end of its init.
notifications_sender_ref: ServiceRef[Provided[NotificationSender]] = create_provided_ref(
    "notifications.sender", plugin_id=PLUGIN_ID
)
#: ... and its idempotency keys here (the in-process path of ``send(idempotency_key=...)``).
notifications_idempotency_ref: ServiceRef[Provided[IdempotencyKeys]] = create_provided_ref(
    "notifications.idempotency", plugin_id=PLUGIN_ID
)
#: The longest key the service sends to a remote notifications plugin (its own limit may differ).
MAX_REMOTE_KEY_LENGTH = 255


class NotificationSendError(Exception):
    """Sending over HTTP failed (Backstage: ``Failed to send notifications: ...``)."""


class NotificationService:
    """Sends notifications as the plugin that depends on it."""

    def __init__(
        self,
        *,
        local_sender: Provided[NotificationSender],
        auth: Any,
        local_idempotency: Provided[IdempotencyKeys] | None = None,
        discovery: Any,
        instance_metadata: Any,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._local_sender = local_sender
        self._local_idempotency = local_idempotency
        self._auth = auth
        self._discovery = discovery
        self._instance_metadata = instance_metadata
        self._http_client = http_client

    async def send(
        self, *, recipients: Mapping[str, Any], payload: Mapping[str, Any], idempotency_key: str | None = None
    ) -> None:
        """Send a notification (``recipients``/``payload`` as in ``POST /notifications``).

        With ``idempotency_key`` (as the ``Idempotency-Key`` header: printable ASCII), a repeat
        within ``notifications.idempotency.window`` sends nothing; the key is scoped to the calling
        plugin. Raises :class:`host.errors.InputError` for an invalid request when in-process
        (:class:`host.errors.ConflictError` while a send with the key runs, a 422
        ``IdempotencyKeyReusedError`` for the key with another body), and
        :class:`NotificationSendError` when the remote notifications plugin answers with an error.
        """
        body = {"recipients": dict(recipients), "payload": dict(payload)}
        own = self._auth.get_own_service_credentials()
        origin = own.principal.subject
        if self._instance_metadata.is_installed(PLUGIN_ID):
            sender = await self._local_sender.get()
            if idempotency_key is None:
                await sender.send(body, origin=origin)
                return
            if self._local_idempotency is None:  # only a hand-built service lacks them; never drop a key
                raise ValueError("idempotency_key needs local_idempotency (notifications_idempotency_ref)")
            keys = await self._local_idempotency.get()
            await keys.run(
                origin, idempotency_key, body, lambda record: sender.send(body, origin=origin, before_commit=record)
            )
            return
        base_url = await self._discovery.get_base_url(PLUGIN_ID)
        token = await self._auth.get_plugin_request_token(on_behalf_of=own, target_plugin_id=PLUGIN_ID)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = header_value(check_key(idempotency_key, MAX_REMOTE_KEY_LENGTH))
        import httpx  # only a service whose notifications plugin runs elsewhere needs an HTTP client

        try:
            if self._http_client is not None:
                response = await self._http_client.post(base_url, json=body, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=30) as client:
                    response = await client.post(base_url, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise NotificationSendError(f"Failed to send notifications: {error}") from error
        if response.status_code >= 400:
            raise NotificationSendError(
                f"Failed to send notifications: Error: Request failed with status {response.status_code}"
            )


def _service_factory(ref: ServiceRef[Any]) -> ServiceFactory:
    return create_service_factory(
        ref,
        lambda local_sender, local_idempotency, auth, discovery, instance_metadata: NotificationService(
            local_sender=local_sender,
            local_idempotency=local_idempotency,
            auth=auth,
            discovery=discovery,
            instance_metadata=instance_metadata,
        ),
        deps={
            "local_sender": notifications_sender_ref,
            "local_idempotency": notifications_idempotency_ref,
            "auth": core_services.auth,
            "discovery": core_services.discovery,
            "instance_metadata": core_services.instance_metadata,
        },
    )


#: Plugin-scoped ref of the notification service (Backstage id ``notifications.service``).
notification_service_ref: ServiceRef[NotificationService] = create_service_ref(
    "notifications.service", "plugin", default_factory=_service_factory
)
