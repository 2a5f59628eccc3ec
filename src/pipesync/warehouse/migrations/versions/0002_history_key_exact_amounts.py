"""Stage history unique per change; amounts exact on SQLite.

Two syncs of one source at once could each record the same stage change: the
duplicates are removed (the oldest row stays) and a unique key stops new ones.
SQLite keeps a NUMERIC column's values as floats, so amounts become text there
(every value SQLite held converts exactly: it was already a float).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

AMOUNTS = {"deals": ("amount", "amount_reporting"), "golden_deals": ("amount", "amount_reporting")}


def upgrade() -> None:
    op.execute("DELETE FROM stage_history WHERE id NOT IN (SELECT MIN(id) FROM stage_history "
               "GROUP BY deal_key, COALESCE(from_stage, ''), to_stage, changed_at, origin)")
    op.create_index("uq_stage_history_change", "stage_history",
                    ["deal_key", sa.text("coalesce(from_stage, '')"), "to_stage", "changed_at", "origin"], unique=True)
    if op.get_bind().dialect.name == "sqlite":
        for table, columns in AMOUNTS.items():
            with op.batch_alter_table(table) as batch:
                for column in columns:
                    batch.alter_column(column, type_=sa.Text(), existing_type=sa.Numeric(20, 4))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, columns in AMOUNTS.items():
            with op.batch_alter_table(table) as batch:
                for column in columns:
                    batch.alter_column(column, type_=sa.Numeric(20, 4), existing_type=sa.Text())
    op.drop_index("uq_stage_history_change", table_name="stage_history")
