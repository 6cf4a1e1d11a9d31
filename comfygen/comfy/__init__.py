"""Talking to ComfyUI: launching and supervising it, its REST calls, prompts followed to their
end, its node definitions and model folders, and the files it writes."""

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
