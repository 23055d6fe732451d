import os
import socket
import threading

import pytest

from agentkit.testing import NetworkBlockedError


def test_hf_offline_variables_are_set():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_outside_connection_fails_loudly():
    with pytest.raises(NetworkBlockedError, match="blocked"):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    with socket.socket() as sock, pytest.raises(NetworkBlockedError):
        sock.connect(("1.1.1.1", 443))


def test_loopback_stays_open():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = threading.Thread(target=lambda: server.accept()[0].close())  # noqa: PLW0108 - accept on the thread
    accepted.start()
    with socket.create_connection(("localhost", port), timeout=2):
        pass
    accepted.join(2)
    server.close()
