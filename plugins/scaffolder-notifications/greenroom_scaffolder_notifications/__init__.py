"""The ``notification:send`` template action for Greenroom.

* :data:`scaffolder_notifications_module` - backend module ``scaffolder`` of plugin
  ``notifications`` (entry point ``scaffolder-notifications``); it registers the action in
  that plugin's actions registry (``/api/notifications/.backstage/actions/v1/actions``).
* :class:`NotificationSendInput` - the action's input model.

Run a template with it: ``greenroom template run examples/notify-template.yaml``.
"""

from greenroom_scaffolder_notifications.action import ACTION_NAME, NotificationSendInput, create_send_action
from greenroom_scaffolder_notifications.module import scaffolder_notifications_module

__all__ = ["ACTION_NAME", "NotificationSendInput", "create_send_action", "scaffolder_notifications_module"]
