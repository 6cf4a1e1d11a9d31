"""comfygen: turn ComfyUI workflows into typed, documented HTTP endpoints."""

__version__ = "0.1.0"
