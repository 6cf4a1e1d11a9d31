"""Model files at server start (`COMFYGEN_MODELS_PULL`): pulled in the background, gating /ready
(`before_start`) and answering 503 for requests whose files are still on their way."""
