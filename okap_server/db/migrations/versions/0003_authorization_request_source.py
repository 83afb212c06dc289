"""authorization request source

Where each pending request came from (an IP address, or an IPv6 /64), so the flood caps can
count per source and the pending list can show every source's newest request first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:51:41.363572
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("authorization_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_authorization_request_source"), ["source"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("authorization_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authorization_request_source"))
        batch_op.drop_column("source")
