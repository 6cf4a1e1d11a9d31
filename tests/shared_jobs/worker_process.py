"""A `--role worker` server in a process of its own (tests SIGKILL it): settings from COMFYGEN_*."""

from __future__ import annotations

import uvicorn

from server.app import create_app
from server.main import CoalescingProtocol
from server.settings import Settings

if __name__ == "__main__":
    settings = Settings()
    uvicorn.run(create_app(settings, {}), host="127.0.0.1", port=settings.port,
                log_level="warning", lifespan="on", http=CoalescingProtocol)
