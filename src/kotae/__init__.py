"""kotae: a self-hosted OpenAI Responses API platform on open models."""

__version__ = "0.1.0"
