"""Owns what generated workflow modules import at run time: input base, descriptor, choices."""

from comfygen.nodedefs import MediaKind
from comfygen.runtime.input import WorkflowInput, random_seed
from comfygen.runtime.workflow import ChoiceSource, Target, Workflow

__all__ = ["ChoiceSource", "MediaKind", "Target", "Workflow", "WorkflowInput", "random_seed"]
