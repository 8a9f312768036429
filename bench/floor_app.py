"""The floor: a minimal Starlette app answering one small JSON POST, served like the mock."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    """Parse the JSON body and answer a small JSON object."""
    body = await request.json()
    return JSONResponse({"ok": True, "fence_token": body.get("fence_token")})


async def health(request: Request) -> Response:
    """A readiness probe for the benchmark."""
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/health", health)])


def stack_options(stack: str) -> dict[str, Any]:
    """httptools and uvloop when installed ("auto"), or asyncio and h11 ("pure"), as
    `vesanor-mock serve --http-stack` chooses them."""
    options: dict[str, Any] = {"http": "h11", "loop": "asyncio"}
    if stack == "pure":
        return options
    try:
        import httptools  # noqa: F401

        options["http"] = "httptools"
    except ImportError:
        pass
    try:
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    except ImportError:
        pass
    return options


def main() -> None:
    """Serve the floor app with the same uvicorn options as `vesanor-mock serve`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--http-stack", choices=("auto", "pure"), default="auto")
    args = parser.parse_args()
    options = stack_options(args.http_stack)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", **options)


if __name__ == "__main__":
    main()
