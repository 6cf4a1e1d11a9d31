"""Comfy API v2 (`/api/v2/*`): the contract of Comfy Org's SDKs, served by comfygen's own jobs.

One job engine, two HTTP faces: `/jobs` and `/api/v2/jobs` read and write the same records
(`server.jobs`), in the single-machine and the shared (Redis) mode. The wire shapes are in
`contract.py`, the translation of a comfygen job in `views.py`, submission in `submit.py`,
the asset store in `assets.py`, the routes in `routes.py` and `asset_routes.py`."""
