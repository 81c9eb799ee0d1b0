"""Indexes that match the list order exactly: (user, created, id) and (created, id).

The default order is ``created DESC, id DESC``. With the old (user, created)
index PostgreSQL had to sort every row of a user to break ties on ``id``, or
walked the global ``created`` index filtering by user, which degrades as the
table grows. With these the newest page is an index range scan.

Revision ID: notifications_0002
Revises: notifications_0001
"""

from alembic import op

revision = "notifications_0002"
down_revision = "notifications_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("notification_user_created_id_idx", "notification", ["user", "created", "id"])
    op.drop_index("notification_user_created_idx", table_name="notification")
    op.create_index("broadcast_created_id_idx", "broadcast", ["created", "id"])
    op.drop_index("broadcast_created_idx", table_name="broadcast")


def downgrade() -> None:
    op.create_index("broadcast_created_idx", "broadcast", ["created"])
    op.drop_index("broadcast_created_id_idx", table_name="broadcast")
    op.create_index("notification_user_created_idx", "notification", ["user", "created"])
    op.drop_index("notification_user_created_id_idx", table_name="notification")
