"""Owns the mapping spec: which workflow inputs become public fields, and how."""

from comfygen.spec.models import FieldSpec, TargetRef, WorkflowSpec

__all__ = ["FieldSpec", "TargetRef", "WorkflowSpec"]
