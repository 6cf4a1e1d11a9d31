"""Write the images of a comfygen response (JSON file or stdin) to a folder: save_images.py FILE [DIR]."""

import base64
import json
import sys
from pathlib import Path

source = sys.argv[1] if len(sys.argv) > 1 else "-"
body = json.load(sys.stdin if source == "-" else open(source, encoding="utf-8"))
out = Path(sys.argv[2] if len(sys.argv) > 2 else "out")
out.mkdir(parents=True, exist_ok=True)
for name, data in zip(body["filenames"], body["images"], strict=True):
    (out / name).write_bytes(base64.b64decode(data))
    print(out / name)
