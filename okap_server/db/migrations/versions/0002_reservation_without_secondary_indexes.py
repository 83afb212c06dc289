"""reservation without secondary indexes

Every proxied request inserts one ``reservation`` row at admission and deletes it at
settlement; the table holds only requests in flight. Its two secondary indexes cost two
more B-tree writes each way per request and are not needed for so small a table (the
sweeper's ``expires_at`` scan and a grant delete's cascade read it whole).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 23:18:09.848746
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reservation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reservation_expires_at"))
        batch_op.drop_index(batch_op.f("ix_reservation_grant_id"))


def downgrade() -> None:
    with op.batch_alter_table("reservation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reservation_grant_id"), ["grant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reservation_expires_at"), ["expires_at"], unique=False)
