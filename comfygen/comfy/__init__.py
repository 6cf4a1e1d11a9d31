"""Talking to ComfyUI: launching it, and its web API."""
