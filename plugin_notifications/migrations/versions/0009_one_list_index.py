"""One index for every per-user read of ``notification`` instead of six: fan-outs write far less.

Each per-user index costs a fan-out one leaf-page insert per recipient, and as the table grows
those pages are all different ones (one per user). A 10,000-user COPY into a 1,000,000-row table
took 290-510 ms with the seven indexes of 0001-0008 and 60-80 ms with the three left here
(PostgreSQL 15, medians of 7 rounds on a busy 2-core machine; see docs/performance.md).

``(user, created, archived, read, saved, origin, topic)`` serves:

- the list, newest first, walked backwards from the user's newest row with ``archived``,
  ``read``, ``saved`` and ``topic`` checked in the index (an ``IS NULL`` condition on a column
  before ``created`` would not let PostgreSQL use the index's order, so ``archived`` comes after
  it); ``createdAfter`` is a range on ``created``;
- the counts of the list and of ``/status``, the topics and the settings' origins and topics:
  index-only scans of the user's entries.

Other orders (title, severity, origin, topic) and search read the user's rows through it and sort
them, as title and severity did before. Dropped: ``(user, created, id)``, ``(user, archived,
created)``, ``(user, read, archived)``, ``(user, origin, topic)``, ``(user, topic)`` and
``(created)``, which the retention cleaner never used (its ``created``/``updated`` condition is
an OR, read with a sequential scan). The partial unique ``(user, origin, scope)`` index stays:
scope re-notify's ``ON CONFLICT`` needs it.

Revision ID: notifications_0009
Revises: notifications_0008
"""

from alembic import op

revision = "notifications_0009"
down_revision = "notifications_0008"
branch_labels = None
depends_on = None

LIST_INDEX = "notification_user_list_idx"
LIST_COLUMNS = ["user", "created", "archived", "read", "saved", "origin", "topic"]
#: The indexes this revision replaces, as 0001-0006 created them.
DROPPED = {
    "notification_user_created_id_idx": ["user", "created", "id"],
    "notification_user_archived_created_idx": ["user", "archived", "created"],
    "notification_user_read_archived_idx": ["user", "read", "archived"],
    "notification_user_origin_topic_idx": ["user", "origin", "topic"],
    "notification_user_topic_idx": ["user", "topic"],
    "notification_created_idx": ["created"],
}


def upgrade() -> None:
    op.create_index(LIST_INDEX, "notification", LIST_COLUMNS)
    for name in DROPPED:
        op.drop_index(name, table_name="notification")


def downgrade() -> None:
    for name, columns in DROPPED.items():
        op.create_index(name, "notification", columns)
    op.drop_index(LIST_INDEX, table_name="notification")
