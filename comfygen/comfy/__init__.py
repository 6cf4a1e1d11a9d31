"""Talking to ComfyUI: launching it, and its web API."""

from comfygen.comfy.client import ComfyClient
from comfygen.comfy.errors import (
    ComfyError,
    ComfyExecutionError,
    ComfyHTTPError,
    ComfyInterruptedError,
    ComfyTimeoutError,
    ComfyUnavailableError,
    ComfyValidationError,
)
from comfygen.comfy.models import OutputFile, ProgressEvent, PromptResult, QueueInfo
from comfygen.comfy.supervisor import State, Supervisor

__all__ = [
    "ComfyClient", "ComfyError", "ComfyExecutionError", "ComfyHTTPError", "ComfyInterruptedError",
    "ComfyTimeoutError", "ComfyUnavailableError", "ComfyValidationError", "OutputFile",
    "ProgressEvent", "PromptResult", "QueueInfo", "State", "Supervisor",
]
