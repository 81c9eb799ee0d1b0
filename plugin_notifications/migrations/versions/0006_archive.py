"""Archive and per-user deletion: ``notification.archived``, ``broadcast_user_status.archived`` and ``.deleted``.

The default list and ``/status`` leave archived notifications out, so the indexes lead with
``(user, archived)``: the newest page of the default list is a range scan of
``(user, archived, created)`` where ``archived IS NULL``, and the counts of ``/status`` read
``(user, read, archived)`` alone (it replaces ``(user, read)``, which it extends). A deleted
broadcast is one ``broadcast_user_status`` row of that user (found through its unique
``(broadcast_id, user)`` index); the broadcast stays for everyone else.

Revision ID: notifications_0006
Revises: notifications_0005
"""

import sqlalchemy as sa
from alembic import op

from plugin_notifications.tables import UtcDateTime

revision = "notifications_0006"
down_revision = "notifications_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notification", sa.Column("archived", UtcDateTime, nullable=True))
    op.add_column("broadcast_user_status", sa.Column("archived", UtcDateTime, nullable=True))
    op.add_column("broadcast_user_status", sa.Column("deleted", UtcDateTime, nullable=True))
    op.create_index("notification_user_archived_created_idx", "notification", ["user", "archived", "created"])
    op.create_index("notification_user_read_archived_idx", "notification", ["user", "read", "archived"])
    op.drop_index("notification_user_read_idx", table_name="notification")


def downgrade() -> None:
    op.create_index("notification_user_read_idx", "notification", ["user", "read"])
    op.drop_index("notification_user_read_archived_idx", table_name="notification")
    op.drop_index("notification_user_archived_created_idx", table_name="notification")
    with op.batch_alter_table("broadcast_user_status") as batch:
        batch.drop_column("deleted")
        batch.drop_column("archived")
    op.drop_column("notification", "archived")
