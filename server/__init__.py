"""The HTTP server: every generated workflow as a typed endpoint, with jobs, webhooks, media
inputs and access control, each feature in one package of its own."""
