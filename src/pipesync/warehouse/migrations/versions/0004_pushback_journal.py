"""Push-back: runs, a fuller change journal, golden id aliases.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# A migration is a frozen snapshot: no imports from the live schema.
Instant = sa.DateTime(timezone=True)


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JOURNAL_COLUMNS = (("source", sa.String(100)), ("batch", sa.Integer()), ("merge_into", sa.String(300)),
                   ("new_source_id", sa.String(200)), ("finished_at", Instant))


def upgrade() -> None:
    op.create_table("write_runs",
                    sa.Column("run_id", sa.String(64), primary_key=True),
                    sa.Column("plan_id", sa.String(100), nullable=False),
                    sa.Column("kind", sa.String(8), nullable=False),
                    sa.Column("undo_of", sa.String(64)),
                    sa.Column("started_at", Instant, nullable=False),
                    sa.Column("finished_at", Instant),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("counts", sa.JSON(), nullable=False))
    op.create_table("golden_aliases",
                    sa.Column("alias_id", sa.String(64), primary_key=True),
                    sa.Column("golden_id", sa.String(64), nullable=False),
                    sa.Column("recorded_at", Instant, nullable=False))
    with op.batch_alter_table("change_journal") as batch:
        for name, type_ in JOURNAL_COLUMNS:
            batch.add_column(sa.Column(name, type_))


def downgrade() -> None:
    with op.batch_alter_table("change_journal") as batch:
        for name, _ in JOURNAL_COLUMNS:
            batch.drop_column(name)
    op.drop_table("golden_aliases")
    op.drop_table("write_runs")
