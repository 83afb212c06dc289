"""delegation

Token exchange (RFC 8693, issue 19): a grant may be the child of another. It names its
parent, its ancestors root first and its ``act`` chain; a person may forbid delegating a
grant (asked on the consent page, so the request carries the choice too). A reservation's
periods widen: a child's hold names its ancestors' counter rows as well.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 16:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("grant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("parent_grant_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
        )
        batch_op.add_column(sa.Column("ancestry", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("act", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("delegation_allowed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.create_index(
            batch_op.f("ix_grant_parent_grant_id"), ["parent_grant_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_grant_parent_grant_id", "grant", ["parent_grant_id"], ["id"], ondelete="CASCADE"
        )
    with op.batch_alter_table("authorization_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delegation_allowed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    if op.get_bind().dialect.name == "postgresql":  # SQLite does not enforce a length
        op.alter_column(
            "reservation",
            "periods",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=400),
            type_=sqlmodel.sql.sqltypes.AutoString(length=4000),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "reservation",
            "periods",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=4000),
            type_=sqlmodel.sql.sqltypes.AutoString(length=400),
        )
    with op.batch_alter_table("authorization_request", schema=None) as batch_op:
        batch_op.drop_column("delegation_allowed")
    with op.batch_alter_table("grant", schema=None) as batch_op:
        batch_op.drop_constraint("fk_grant_parent_grant_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_grant_parent_grant_id"))
        batch_op.drop_column("delegation_allowed")
        batch_op.drop_column("act")
        batch_op.drop_column("ancestry")
        batch_op.drop_column("parent_grant_id")
