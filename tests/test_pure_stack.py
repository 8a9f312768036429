"""The pure-Python fallback (asyncio and h11) serves the API as the default stack does.

`pip install vesanor-mock` brings httptools and uvloop where wheels exist; where they do
not (or with `--http-stack pure`), uvicorn runs on asyncio and h11. This module runs the
governed-cycle and HTTP-edge tests again, unchanged, against a server forced onto that
stack: the `server` fixture below replaces conftest's for the tests imported here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vesanor_mock.config import Settings
from vesanor_mock.server import MockServer

from .test_api_cycle import *  # noqa: F403  (collected again, on the pure stack)
from .test_http_edge import *  # noqa: F403


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """A mock server on asyncio and h11, stopped after the module."""
    with MockServer(Settings(port=0, http_stack="pure")) as running:
        assert running._server is not None and running._server.config.http == "h11"
        yield running
