"""Items found by their id (`item_reference` input items): the output items of finished
responses get a table of their own, and input and conversation items an index on item_id.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "response_output_items",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "response_id",
            sa.String(64),
            sa.ForeignKey("responses.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_output_items_item", "response_output_items", ["item_id"])
    op.create_index("ix_output_items_response", "response_output_items", ["response_id"])
    op.create_index("ix_input_items_item", "response_input_items", ["item_id"])
    op.create_index("ix_conversation_items_item", "conversation_items", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_conversation_items_item", "conversation_items")
    op.drop_index("ix_input_items_item", "response_input_items")
    op.drop_table("response_output_items")
