"""Media inputs: base64, data URIs, URLs and multipart files decoded into checked files with safe
upload names, and uploaded to ComfyUI for the request."""

from server.media.decode import ACCEPTED, MediaFile, decode_media, validate_media
from server.media.errors import MediaError
from server.media.limits import MediaLimits
from server.media.names import check_upload_name, looks_like_path, safe_upload_name
from server.media.sniff import Sniffed, sniff

__all__ = [
    "ACCEPTED",
    "MediaError",
    "MediaFile",
    "MediaLimits",
    "Sniffed",
    "check_upload_name",
    "decode_media",
    "looks_like_path",
    "safe_upload_name",
    "sniff",
    "validate_media",
]
