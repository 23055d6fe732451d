"""The one difference between the transformers versions agentkit supports that its code has to spell out."""

from __future__ import annotations

import functools


@functools.cache
def cache_keyword() -> str:
    """The name of a model's key/value cache in `forward`, `generate` and their outputs, for this transformers.

    transformers 5.24 renamed ``past_key_values`` to ``cache`` everywhere (the old keyword still works, with a
    `FutureWarning`, until 5.40; the outputs only have the new attribute); earlier versions know only the old name.
    """
    import transformers
    from packaging.version import Version

    return "cache" if Version(transformers.__version__) >= Version("5.24") else "past_key_values"
