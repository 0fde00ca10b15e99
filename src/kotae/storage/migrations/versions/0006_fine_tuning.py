"""Fine-tuning jobs, their events and checkpoints.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fine_tuning_jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "project_id",
            sa.String(64),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("fine_tuned_model", sa.String(512), nullable=True),
        sa.Column("model_deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
    )
    op.create_index("ix_ft_jobs_project", "fine_tuning_jobs", ["project_id", "created_at"])
    op.create_index("ix_ft_jobs_status", "fine_tuning_jobs", ["status", "created_at"])
    op.create_table(
        "fine_tuning_events",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "job_id",
            sa.String(64),
            sa.ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_ft_events_job", "fine_tuning_events", ["job_id", "pk"])
    op.create_table(
        "fine_tuning_checkpoints",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "job_id",
            sa.String(64),
            sa.ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(512), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_ft_checkpoints_job", "fine_tuning_checkpoints", ["job_id", "pk"])
    op.create_index("ix_ft_checkpoints_model", "fine_tuning_checkpoints", ["model"])


def downgrade() -> None:
    op.drop_table("fine_tuning_checkpoints")
    op.drop_table("fine_tuning_events")
    op.drop_table("fine_tuning_jobs")
