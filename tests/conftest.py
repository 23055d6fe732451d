"""Test configuration: every test runs offline, and a network attempt fails loudly."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from agentkit.testing import OFFLINE_ENV, block_network

# Set before any test imports huggingface_hub or transformers, which read these at import time.
os.environ.update(OFFLINE_ENV)


@pytest.fixture(autouse=True)
def _offline() -> Iterator[None]:
    with block_network():
        yield
