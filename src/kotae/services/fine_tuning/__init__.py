"""Fine-tuning: the jobs API (`jobs.py`) and the trainer's supervision (`supervisor.py`)."""

from kotae.services.fine_tuning.jobs import FineTuningService

__all__ = ["FineTuningService"]
