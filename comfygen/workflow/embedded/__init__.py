"""Workflows that ComfyUI embeds in the files it saves: images, audio and video.

ComfyUI writes two JSON texts into every file its savers make: `workflow` (the UI format, from
the frontend's `extra_pnginfo`) and `prompt` (the API format it ran). Each container keeps them
its own way; `read_embedded` finds the container by its first bytes and returns the texts found.
"""

from comfygen.workflow.embedded.sniff import EmbeddedTexts, container_of, read_embedded

__all__ = ["EmbeddedTexts", "container_of", "read_embedded"]
