"""The package version shown by probes and the OpenAPI document."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("comfygen")
except PackageNotFoundError:  # running from a checkout that is not installed
    VERSION = "0.0.0"
