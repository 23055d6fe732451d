"""ChromaMemory against a real `chroma run` server on loopback, with two clients writing at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from chroma_server import ChromaServer

from agentkit.embeddings import Embedder
from agentkit.memory import ChromaMemory, NewMemory


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_http_memory_stores_searches_updates_and_forgets(server: ChromaServer, embedder: Embedder):
    memory = ChromaMemory.http(port=server.port, collection="crud", embeddings=embedder, namespace="user:ada")
    assert "127.0.0.1" in memory.location and str(server.port) in memory.location
    assert memory._space(memory.namespace).configuration_json["hnsw"]["space"] == "cosine"
    tea, _ = memory.add_many([NewMemory("Ada likes green tea.", kind="preference"), "Ada lives in Lisbon."])
    assert memory.search("What does Ada drink?", k=1)[0].record.id == tea
    memory.update(tea, text="Ada likes black coffee.")
    assert memory.get([tea])[0].text == "Ada likes black coffee."
    assert memory.forget(kinds=["preference"]) == 1
    # Another client of the same server sees the same memories.
    other = ChromaMemory.http(port=server.port, collection="crud", embeddings=embedder, namespace="user:ada")
    assert [r.text for r in other.recall("Where does Ada live?")] == ["Ada lives in Lisbon."]


WRITER = textwrap.dedent(
    """
    import sys
    from agentkit.memory import ChromaMemory
    memory = ChromaMemory.http(port=int(sys.argv[1]), collection="shared")
    print("ready", flush=True)
    sys.stdin.readline()  # go
    for start in range(0, 30, 10):
        memory.add_many([f"Client two, note {i}." for i in range(start, start + 10)])
    memory.add_many([f"Both clients write this, number {i}." for i in range(10)])
    print("done", flush=True)
    """
)


def test_two_clients_writing_at_once_lose_nothing_and_deduplicate(server: ChromaServer, embedder: Embedder):
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(server.port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdin is not None and writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        memory = ChromaMemory.http(port=server.port, collection="shared", embeddings=embedder)
        writer.stdin.write("go\n")
        writer.stdin.flush()
        for start in range(0, 30, 10):
            memory.add_many([f"Client one, note {i}." for i in range(start, start + 10)])
        memory.add_many([f"Both clients write this, number {i}." for i in range(10)])
        assert writer.stdout.readline().strip() == "done"
        assert writer.wait(30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert memory.count() == 30 + 30 + 10
    # Adding what is stored only finds it (no embedding, no new record): every note of client two is there.
    ids = memory.add_many([f"Client two, note {i}." for i in range(30)])
    assert len({r.text for r in memory.get(ids)}) == 30
    assert memory.count() == 70
