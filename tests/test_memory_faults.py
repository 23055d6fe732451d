"""Bad input and faults: every case is refused or converted with a clear message, and nothing is lost silently.

Real chromadb, a real chroma server process and the real embedder; the crash test kills a real writer process.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from chroma_server import ChromaServer
from langchain_core.tools import ToolException

from agentkit.embeddings import Embedder
from agentkit.errors import ConfigError
from agentkit.memory import ChromaMemory, MemoryStoreError, NewMemory
from agentkit.tools import memory_tools


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def memory(embedder: Embedder) -> ChromaMemory:
    return ChromaMemory.ephemeral(embeddings=embedder)


# -- texts ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text_is_refused(memory: ChromaMemory, text: str):
    with pytest.raises(ConfigError, match="empty"):
        memory.add(text)
    with pytest.raises(ConfigError, match="empty"):
        memory.as_vectorstore().add_texts([text])
    assert memory.count() == 0


def test_a_megabyte_text_is_refused_at_once_with_what_to_do(memory: ChromaMemory):
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"1,048,576 characters.*split it into passages"):
        memory.add("x" * 2**20)
    assert time.perf_counter() - started < 0.5  # refused before any embedding
    # In a batch, one bad item stops the whole batch before anything is stored.
    with pytest.raises(ConfigError):
        memory.add_many(["fine", "y" * 2**20])
    assert memory.count() == 0
    # A long query is cut rather than refused: the embedding model reads only its start anyway.
    assert memory.search("z" * 2**20) == []


def test_non_utf8_bytes_are_refused_with_how_to_decode(memory: ChromaMemory):
    raw = b"caf\xe9 \xff\xfe"
    with pytest.raises(ConfigError, match="decode it first"):
        memory.add(raw)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="surrogates"):
        memory.add(raw.decode("utf-8", errors="surrogateescape"))
    with pytest.raises(ConfigError, match="surrogates"):
        memory.add("fine", metadata={"note": raw.decode("utf-8", errors="surrogateescape")})
    decoded = raw.decode("utf-8", errors="replace")
    (record,) = memory.get([memory.add(decoded)])
    assert record.text == decoded


def test_unstorable_metadata_is_converted_or_refused_by_key(memory: ChromaMemory):
    when = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    memory_id = memory.add("Ada's birthday party.", metadata={"when": when, "tags": ("a", "b"), "gone": None, "n": 3})
    assert memory.get([memory_id])[0].metadata == {"when": "2026-05-01T12:30:00+00:00", "tags": ["a", "b"], "n": 3}
    bad = {
        "nested": {"a": 1},
        "raw": b"bytes",
        "nan": float("nan"),
        "inf": float("inf"),
        "mixed": [1, "a"],
        "empty": [],
        "huge": 2**70,
        "obj": object(),
    }
    for key, value in bad.items():
        with pytest.raises(ConfigError, match=re.escape(repr(key))):
            memory.add(f"text for {key}", metadata={key: value})
    for key in ("ak:kind", "#document", "$and", ""):
        with pytest.raises(ConfigError, match=r"reserved|non-empty"):
            memory.add("text", metadata={key: 1})
    with pytest.raises(ConfigError):
        memory.add_many([NewMemory("good"), NewMemory("bad", metadata={"x": {"y": 1}})])
    assert memory.count() == 1


@pytest.mark.parametrize("bad", [None, 3, 0.5, "fact" * 100])
def test_bad_kind_and_importance_are_refused(memory: ChromaMemory, bad: object):
    with pytest.raises(ConfigError):
        memory.add("text", kind=bad)  # type: ignore[arg-type]
    if not isinstance(bad, float):
        with pytest.raises(ConfigError, match="importance"):
            memory.add("text", importance=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="importance"):
        memory.add("text", importance=1.5)


def test_namespaces_with_odd_characters_round_trip_and_stay_apart(memory: ChromaMemory):
    odd = "user/ä ö \"quoted\" '$and' {} \n 🙂 % _ *"
    similar = "user/ä ö"
    memory.add("Ada likes tea.", namespace=odd)
    memory.add("Ada likes tea.", namespace=similar)
    memory.add("Ada likes coffee.", namespace=odd)
    assert memory.count(odd) == 2
    assert memory.count(similar) == 1
    hits = memory.search("tea", namespaces=[odd])
    assert {h.record.namespace for h in hits} == {odd}
    assert memory.forget(namespace=odd) == 2
    assert memory.count(similar) == 1
    for bad in ("", "   ", "\udcff", "n" * 300):
        with pytest.raises(ConfigError, match="namespace"):
            memory.add("text", namespace=bad)


# -- persistent folders ---------------------------------------------------------------------------------------------


def test_a_folder_that_cannot_be_written_is_refused(embedder: Embedder, tmp_path: Path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        ChromaMemory(a_file, embeddings=embedder)
    with pytest.raises(ConfigError, match="Cannot write"):
        ChromaMemory(a_file / "store", embeddings=embedder)
    # Nobody can make folders in sysfs: a read-only place even for root, who ignores permission bits.
    if sys.platform == "linux":
        with pytest.raises(ConfigError, match="Cannot write"):
            ChromaMemory("/sys/agentkit-memory", embeddings=embedder)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="Cannot write"):
            ChromaMemory(locked, embeddings=embedder)


@pytest.fixture(scope="module")
def saved_store(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A persistent store with enough records that chroma has written its vector index files."""
    path = tmp_path_factory.mktemp("saved") / "store"
    memory = ChromaMemory(path, embeddings=embedder)
    vectors = np.random.default_rng(0).normal(size=(1500, embedder.dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    memory.add_many([f"record {i}" for i in range(1500)], vectors=vectors.tolist())
    return path


def _damage(store: Path, copy: Path, how: str) -> None:
    shutil.copytree(store, copy)
    database = copy / "chroma.sqlite3"
    if how == "truncated database":
        os.truncate(database, database.stat().st_size // 2)
    elif how == "garbage database":
        database.write_bytes(b"not a database" * 100)
    else:  # a half-copied vector index
        (segment,) = [p for p in copy.iterdir() if p.is_dir()]
        for part in segment.iterdir():
            os.truncate(part, part.stat().st_size // 2)


@pytest.mark.parametrize("how", ["truncated database", "garbage database", "truncated index"])
def test_a_half_written_store_is_refused_when_opened(embedder: Embedder, saved_store: Path, tmp_path: Path, how: str):
    copy = tmp_path / "copy"
    _damage(saved_store, copy, how)
    with pytest.raises(ConfigError, match="restore it from a backup"):
        ChromaMemory(copy, embeddings=embedder)


def test_a_store_made_with_other_embeddings_is_refused(saved_store: Path, tmp_path: Path):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    shutil.copytree(saved_store, tmp_path / "copy")
    with pytest.raises(ConfigError, match="cannot be compared"):
        ChromaMemory(tmp_path / "copy", embeddings=DeterministicFakeEmbedding(size=8))


# -- a server that goes away ----------------------------------------------------------------------------------------


def test_no_server_is_a_clear_error_at_construction(embedder: Embedder):
    from chroma_server import free_port

    port = free_port()
    with pytest.raises(ConfigError, match=f"chroma run --path DIR --host 127.0.0.1 --port {port}"):
        ChromaMemory.http(port=port, embeddings=embedder)


def test_a_server_going_away_mid_session_fails_loudly_and_loses_nothing(embedder: Embedder, tmp_path: Path):
    server = ChromaServer(tmp_path / "server").start()
    try:
        memory = ChromaMemory.http(port=server.port, embeddings=embedder)
        kept = memory.add("Ada lives in Lisbon.")
        remember, recall = memory_tools(memory)
        server.kill()

        with pytest.raises(MemoryStoreError, match=r"cannot be reached.*retry"):
            memory.add("Ada has a cat.")
        with pytest.raises(MemoryStoreError):
            memory.recall("Where does Ada live?")
        with pytest.raises(ToolException, match="Could not remember"):
            remember.invoke({"text": "Ada has a dog."})

        server.start()  # the same folder on the same port: the client carries on
        assert [r.id for r in memory.recall("Where does Ada live?")] == [kept]
        assert memory.count() == 1  # the failed add did not half-happen
        memory.add("Ada has a cat.")  # and retrying it works
        assert memory.count() == 2
        assert "Ada lives in Lisbon." in recall.invoke({"query": "home"})
    finally:
        server.stop()


# -- a writer killed with SIGKILL -----------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from agentkit.memory import ChromaMemory
    memory = ChromaMemory(sys.argv[1])
    print("ready", flush=True)
    i = 0
    while True:
        memory_id = memory.add(f"Note number {i}: Ada's task {i * 7919 % 1000}.")
        print(memory_id, flush=True)  # printed only once add() has returned
        i += 1
    """
)


def test_every_add_that_returned_before_a_sigkill_is_there_after_restart(embedder: Embedder, tmp_path: Path):
    path = tmp_path / "store"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        returned = [writer.stdout.readline().strip() for _ in range(12)]
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
        returned += [line.strip() for line in writer.stdout.read().splitlines() if line.strip()]
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == -signal.SIGKILL

    reopened = ChromaMemory(path, embeddings=embedder)  # a fresh process's view: this folder was never open here
    assert [r.id for r in reopened.get(returned)] == returned
    last = reopened.get([returned[-1]])[0]
    assert reopened.search(last.text, k=1)[0].record.id == last.id  # the vector index has it too


def test_memories_opened_from_several_threads_at_once_all_open():
    # chromadb registers clients without a lock; a fresh process shows the race (before the fix: KeyError
    # 'ephemeral' or "Could not connect to tenant" in most runs), so the check runs in one.
    script = textwrap.dedent(
        """
        from concurrent.futures import ThreadPoolExecutor
        from agentkit.memory.store import ephemeral_client
        with ThreadPoolExecutor(8) as pool:
            print(sum(pool.map(lambda _: ephemeral_client().heartbeat() > 0, range(16))))
        """
    )
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0 and done.stdout.split() == ["16"], done.stderr[-2000:]
