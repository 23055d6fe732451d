"""The prefix store's lookups: longest common token prefix, compared as bytes."""

from __future__ import annotations

import random

import torch

from agentkit.llm.engine import PrefixStore
from agentkit.llm.generate import Prefix, common_ids, common_prefix, id_bytes


def _prefix(ids: list[int]) -> Prefix:
    """A prefix whose cached keys hold each position's token id, so a cut can be checked."""
    keys = torch.tensor(ids, dtype=torch.float64).view(1, 1, -1, 1)
    return Prefix(ids, [(keys, keys.clone())])


def test_common_ids_counts_whole_ids_as_lists_do() -> None:
    rng = random.Random(0)
    base = [rng.randrange(200_000) for _ in range(300)]
    pairs = [(base, base), (base, base[:120]), (base[:1], [])]
    for cut in (0, 1, 57, 299):
        # Ids that differ in their lowest byte, in a middle one, in a high one.
        for other in (base[cut] + 1, base[cut] ^ 256, base[cut] + (1 << 40)):
            pairs.append((base, [*base[:cut], other, *base[cut + 1 :]]))
    for a, b in pairs:
        assert common_ids(id_bytes(a), id_bytes(b)) == common_prefix(a, b)
    assert common_ids(id_bytes([1, 2, 3]), id_bytes([1, 2, 4])) == 2


def test_take_returns_the_longest_shared_prefix_and_leaves_a_token() -> None:
    store = PrefixStore(4)
    store.put(_prefix([1, 2, 3, 4, 5]))
    store.put(_prefix([1, 2, 9, 9]))
    taken = store.take([1, 2, 3, 4, 7, 8])
    assert taken is not None and taken.ids == [1, 2, 3, 4]
    assert taken.kv[0][0].flatten().tolist() == [1, 2, 3, 4]
    whole = store.take([1, 2, 3, 4, 5])  # the whole prompt is cached: one token is left for generation to process
    assert whole is not None and whole.ids == [1, 2, 3, 4]
    assert store.take([7, 1, 2]) is None


def test_put_drops_what_the_new_prefix_holds_and_evicts_the_least_recently_used() -> None:
    store = PrefixStore(2)
    store.put(_prefix([1, 2, 3]))
    store.put(_prefix([1, 2, 3, 4, 5]))  # the next step of the same episode
    assert len(store) == 1
    store.put(_prefix([6, 7, 8]))
    assert store.take([1, 2, 3, 4, 5, 6]) is not None  # used: [6, 7, 8] is now the least recently used
    store.put(_prefix([9, 9, 9]))
    assert len(store) == 2
    assert store.take([6, 7, 8, 0]) is None
    taken = store.take([1, 2, 3, 4, 5, 6])
    assert taken is not None and taken.ids == [1, 2, 3, 4, 5]
