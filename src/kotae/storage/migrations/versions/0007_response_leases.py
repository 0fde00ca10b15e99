"""Responses stored while they run: an owner and a lease on each running one, and the events
of background responses (so a stream resumed after a restart keeps its numbers).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.BigInteger(), nullable=True))
    op.create_index("ix_responses_status_lease", "responses", ["status", "lease_expires_at"])
    op.create_table(
        "response_events",
        sa.Column(
            "response_id",
            sa.String(64),
            sa.ForeignKey("responses.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("response_events")
    op.drop_index("ix_responses_status_lease", "responses")
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("owner")
