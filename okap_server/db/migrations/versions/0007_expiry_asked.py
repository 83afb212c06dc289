"""expiry asked

Per requested entry, whether the app named its expiry (issue 18): the consent page says
"(asked: …)" only then, and otherwise that the vault's default applies, instead of guessing
from how close the expiry is to "created + the default grant days". Requests stored before
this revision keep NULL, read as "not asked"; a pending request lives minutes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 16:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("authorization_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expiry_asked", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("authorization_request", schema=None) as batch_op:
        batch_op.drop_column("expiry_asked")
