"""Owns ComfyUI workflow files: reading the UI and API formats, and converting UI to API format."""

from comfygen.workflow.load import is_ui_format, load_workflow
from comfygen.workflow.ui_to_api import convert_ui_workflow

__all__ = ["convert_ui_workflow", "is_ui_format", "load_workflow"]
