"""Running one request on ComfyUI: admission, the model-file preflight, submit and wait, the
outputs (converted on request) and the body of a finished run."""
