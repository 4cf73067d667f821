"""pytest plugin: the ``llm_server`` fixture, a real OpenAI-compatible server on 127.0.0.1.

Enable it for the whole suite with ``pytest_plugins = ["tests.llm_conftest"]`` in
``tests/conftest.py``. Each test gets a fresh server (its own free port, no recorded requests,
no scripted faults), started in a few milliseconds and stopped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .llm_server import LLMTestServer

LLM_TEST_KEY = "sk-blarify-test-0xC0FFEE-do-not-leak"


@pytest.fixture
def llm_server() -> Iterator[LLMTestServer]:
    """A running ``LLMTestServer`` that expects the API key ``LLM_TEST_KEY``."""
    with LLMTestServer(api_key=LLM_TEST_KEY) as server:
        yield server
