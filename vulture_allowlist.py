"""Names vulture cannot see being used because a framework uses them (`vulture` reads this file
with comfygen/ and server/; see [tool.vulture] in pyproject.toml). Routes, typer commands and
pydantic validators are covered there by `ignore_decorators`, `model_config` by `ignore_names`.

Only framework-called names belong here, each with who calls it, and the few fields of a
published file format or result that callers may read. Code that nothing calls is removed, not
listed.
"""

# ruff: noqa
_ = object()

# pydantic-settings calls this hook on Settings; its signature is fixed (server/settings.py)
_.settings_customise_sources
dotenv_settings
file_secret_settings

# the context-manager protocol passes the exception triple to __exit__ (comfygen/comfy/launcher.py)
exc_info

# sqlite3 reads the connection's row_factory (server/jobs/store.py)
_.row_factory

# read by the jinja template comfygen/templates/workflow_module.py.jinja (comfygen/ir.py)
_.optional_without_default

# response-model fields serialised into the HTTP answer (server/runs/schemas.py,
# server/execution/results.py: comfyui-api's `stats` keys and ours, server/jobs/views.py)
_.comfyui_filename
_.stats
_.status_url
_.events_url
_.preprocess_time
_.comfy_round_trip
_.comfy_execution
_.postprocess_time
_.total_time
_.outputs_ms
_.timings

# LogRecord attributes the JSON formatter writes as fields (server/observability/logs.py)
_.http_method

# fields of ComfyUI's UI-format link, read from the file as the format defines them
# (comfygen/workflow/ui_format.py)
_.target_slot

# what a fetch did, on its public result (server/security/urlguard.py FetchResult)
_.truncated

# the bounded event broadcaster's observable state: listeners and events dropped from a full
# listener queue (server/jobs/events.py; its tests check both bounds)
_.dropped
_.subscriber_count

# the upload blocks of the request envelope, read by name through `Envelope.upload`
# (server/runs/schemas.py UPLOAD_BLOCKS)
_.azure_blob_upload
_.hf_upload
_.http_upload
# pydantic-settings calls it on every source (server/compat_env.py ComfyuiApiSource)
_.get_field_value

# Comfy API v2 response fields, serialised into the answer (server/v2/contract.py), and the
# contract's `tags` on asset requests, accepted and not stored (docs/comfy-api-v2.md)
_.nodes_done
_.nodes_total
_.current_node
_.current_node_class
_.completed_at
_.queue_position
_.urls
_.tags
