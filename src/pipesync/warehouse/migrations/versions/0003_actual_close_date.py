"""The actual close date beside the expected one.

A closed deal's expected close date is a forecast made while it was open; the day it
was won or lost is another fact (Pipedrive's won/lost time, a closed opportunity's
CloseDate). Existing rows get none until their source is read again.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("deals", "golden_deals")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("actual_close_date", sa.Date(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("actual_close_date")
