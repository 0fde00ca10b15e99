"""Webhooks: a project's endpoints (/v1/webhook_endpoints, the CLI, the console), the events
kotae owes them, and their signed, retried delivery."""
