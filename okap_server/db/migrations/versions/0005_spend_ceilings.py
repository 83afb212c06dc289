"""spend ceilings

Account-wide and per-key spend ceilings. Their counters live in ``spend_counter`` beside
the grants' own, so one statement holds a request's worst case on both
(``proxy/accounting/budget.py``): the table loses its foreign key to ``grant`` (a ceiling's
row names an account or a key there), and is rebuilt for it, since SQLite cannot drop a
constraint in place. ``reservation`` records whose ceilings a request counts against, so
the sweeper can charge them, and its periods column widens for the ceilings' entries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTER_COLUMNS = "grant_id, provider, period, spent_micros, reserved_micros, requests"


def _counter_table(name: str, *constraints: sa.schema.SchemaItem) -> None:
    op.create_table(
        name,
        sa.Column('grant_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column('spent_micros', sa.BigInteger(), nullable=False),
        sa.Column('reserved_micros', sa.BigInteger(), nullable=False),
        sa.Column('requests', sa.BigInteger(), nullable=False),
        *constraints,
        sa.PrimaryKeyConstraint('grant_id', 'provider', 'period', name=f'{name}_pkey'),
    )


def _rebuild_counters(*constraints: sa.schema.SchemaItem) -> None:
    _counter_table('spend_counter_next', *constraints)
    op.execute(
        f"INSERT INTO spend_counter_next ({_COUNTER_COLUMNS}) "
        f"SELECT {_COUNTER_COLUMNS} FROM spend_counter"
    )
    op.drop_table('spend_counter')
    op.rename_table('spend_counter_next', 'spend_counter')


def upgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('daily_ceiling_micros', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('weekly_ceiling_micros', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('monthly_ceiling_micros', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('provider_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('monthly_ceiling_micros', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('reservation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.alter_column(
            'periods',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=96),
            type_=sqlmodel.sql.sqltypes.AutoString(length=400),
            existing_nullable=False,
        )
    _rebuild_counters()


def downgrade() -> None:
    op.execute("DELETE FROM spend_counter WHERE grant_id NOT IN (SELECT id FROM \"grant\")")
    _rebuild_counters(sa.ForeignKeyConstraint(['grant_id'], ['grant.id'], ondelete='CASCADE'))
    with op.batch_alter_table('reservation', schema=None) as batch_op:
        batch_op.alter_column(
            'periods',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=400),
            type_=sqlmodel.sql.sqltypes.AutoString(length=96),
            existing_nullable=False,
        )
        batch_op.drop_column('key_id')
        batch_op.drop_column('account_id')
    with op.batch_alter_table('provider_key', schema=None) as batch_op:
        batch_op.drop_column('monthly_ceiling_micros')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('monthly_ceiling_micros')
        batch_op.drop_column('weekly_ceiling_micros')
        batch_op.drop_column('daily_ceiling_micros')
