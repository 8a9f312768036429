"""A pytest plugin for .ci/mutation.py: coverage measured per test, named by node id.

Each test's setup, call and teardown run under a coverage context named after the test's
node id, so the mutation run knows exactly which tests execute each line.
"""

from __future__ import annotations

from collections.abc import Generator

import coverage
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    measuring = coverage.Coverage.current()
    if measuring is not None:
        measuring.switch_context(item.nodeid)
    try:
        return (yield)
    finally:
        if measuring is not None:
            measuring.switch_context("")
