"""agentkit: tool-using agents on LangChain that run on a local Hugging Face model and learn from their episodes.

Compose an agent from swappable parts::

    from agentkit import Agent, tool

    agent = Agent(llm=any_chat_model, tools=[my_tool], max_steps=8)
    result = agent.invoke("What is 3 ACME shares worth?")
"""

from langchain_core.tools import tool

from agentkit.agent import Agent, AgentInput
from agentkit.approval import Approval, ApprovalCallback, Approve, Deny, Edit
from agentkit.errors import AgentkitError, ConfigError
from agentkit.executor import Executor, Isolation
from agentkit.hooks import Hook
from agentkit.planner import Planner, ReActPlanner, ToolCallingPlanner, ToolRequest, Turn
from agentkit.protocols import LongTermMemory, Recollection, Understanding, Understood
from agentkit.steps import (
    Action,
    AgentEvent,
    AgentResult,
    Final,
    FormatError,
    Observation,
    ObservationStatus,
    Status,
    Step,
    Thought,
)
from agentkit.toolbox import Toolbox

__version__ = "0.1.0"

__all__ = [
    "Action",
    "Agent",
    "AgentEvent",
    "AgentInput",
    "AgentResult",
    "AgentkitError",
    "Approval",
    "ApprovalCallback",
    "Approve",
    "ConfigError",
    "Deny",
    "Edit",
    "Executor",
    "Final",
    "FormatError",
    "Hook",
    "Isolation",
    "LongTermMemory",
    "Observation",
    "ObservationStatus",
    "Planner",
    "ReActPlanner",
    "Recollection",
    "Status",
    "Step",
    "Thought",
    "ToolCallingPlanner",
    "ToolRequest",
    "Toolbox",
    "Turn",
    "Understanding",
    "Understood",
    "tool",
]
