"""Helpers that generated workflow modules import. Ordinary, tested Python; templates stay thin."""

from comfygen.runtime.input import WorkflowInput, random_seed
from comfygen.runtime.workflow import ChoiceSource, MediaKind, Target, Workflow

__all__ = ["ChoiceSource", "MediaKind", "Target", "Workflow", "WorkflowInput", "random_seed"]
