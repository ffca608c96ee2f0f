"""``python -m include.feed_service --port 8810``: serve the feeds with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os

from include.config import ConfigError
from include.feed_service.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="converted.in feed service")
    parser.add_argument("--host", default=os.environ.get("FEED_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FEED_PORT", "8810")))
    args = parser.parse_args()
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    try:
        app = create_app()
    except ConfigError as exc:  # a wrong configuration or two feeds sharing a token: do not serve
        raise SystemExit(f"feed service not started: {exc}") from None
    # The access log shows method, path and status only: form bodies (tokens) are never logged.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
