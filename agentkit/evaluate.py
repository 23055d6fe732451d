"""Evaluate an agent on tasks: success per category, well-formed actions, steps, tokens and time.

Each task runs as a full episode of the real agent, with a workspace of its own that holds the task's files (and,
for a memory task, a long-term memory that holds only the task's memories), and is judged by the task's checker.
Episodes run on a few threads at once, so a local model batches their generate calls.
"""

from __future__ import annotations

import json
import queue
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel

from agentkit.agent import Agent
from agentkit.demonstrations import agent_tools, task_world
from agentkit.hooks import Hook
from agentkit.steps import AgentResult, FormatError
from agentkit.tasks import Task

if TYPE_CHECKING:
    from agentkit.memory import ChromaMemory

__all__ = ["CategoryScore", "EvalReport", "TaskOutcome", "evaluate", "plot_report", "save_report"]


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How one task went."""

    task_id: str
    category: str
    question: str
    answer: str | None
    status: str
    success: bool
    steps: int
    model_calls: int
    format_errors: int
    tokens: int
    seconds: float


@dataclass(frozen=True, slots=True)
class CategoryScore:
    """Aggregates over the tasks of one category (or all of them)."""

    n: int
    success: float
    well_formed: float
    mean_steps: float
    mean_tokens: float
    mean_seconds: float


@dataclass
class EvalReport:
    """The result of `evaluate`.

    Attributes:
        model: What was evaluated (a path or id).
        overall: Aggregates over every task.
        categories: Aggregates per category.
        outcomes: One record per task.
        seconds: Wall-clock time of the whole evaluation.
    """

    model: str
    overall: CategoryScore
    categories: dict[str, CategoryScore]
    outcomes: list[TaskOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict of the whole report."""
        return asdict(self)

    def table(self) -> str:
        """A plain-text table, one line per category and one for all."""
        lines = [f"{'category':<14} {'n':>4} {'success':>8} {'formed':>7} {'steps':>6} {'tokens':>7} {'sec':>6}"]
        for name, s in [*sorted(self.categories.items()), ("all", self.overall)]:
            lines.append(
                f"{name:<14} {s.n:>4} {s.success:>8.1%} {s.well_formed:>7.1%} {s.mean_steps:>6.2f} "
                f"{s.mean_tokens:>7.0f} {s.mean_seconds:>6.2f}"
            )
        return "\n".join(lines)


def _score(outcomes: Sequence[TaskOutcome]) -> CategoryScore:
    calls = sum(o.model_calls for o in outcomes)
    return CategoryScore(
        n=len(outcomes),
        success=sum(o.success for o in outcomes) / len(outcomes),
        well_formed=1.0 - sum(o.format_errors for o in outcomes) / calls if calls else 1.0,
        mean_steps=statistics.fmean(o.steps for o in outcomes),
        mean_tokens=statistics.fmean(o.tokens for o in outcomes),
        mean_seconds=statistics.fmean(o.seconds for o in outcomes),
    )


def _run_one(
    llm: BaseChatModel, task: Task, max_steps: int, hooks: Sequence[Hook], spares: queue.SimpleQueue[ChromaMemory]
) -> tuple[Task, AgentResult]:
    try:
        spare = spares.get_nowait()
    except queue.Empty:
        spare = None
    with tempfile.TemporaryDirectory(prefix="agentkit-eval-") as root:
        world = task_world(task, root, spare)
        try:
            agent = Agent(llm=llm, tools=agent_tools(root, memory=world), max_steps=max_steps, hooks=hooks)
            return task, agent.invoke(task.question)
        finally:
            kept = world if world is not None else spare
            if kept is not None:
                spares.put(kept)  # at most one memory per concurrent episode, whatever the task count


def evaluate(
    llm: BaseChatModel,
    tasks: Sequence[Task],
    *,
    model_name: str = "",
    max_steps: int = 8,
    concurrency: int = 4,
    hooks: Sequence[Hook] = (),
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Run every task as an agent episode and score it.

    Args:
        llm: The chat model under test.
        tasks: The tasks (see `agentkit.tasks.generate_tasks`).
        model_name: A label for the report.
        max_steps: The agent's step budget.
        concurrency: Episodes run at once (a local model batches their model calls).
        hooks: Hooks for every episode (e.g. a reward logger).
        progress: Called with (done, total) after each task.

    Returns:
        The report.

    Raises:
        ValueError: When `tasks` is empty or `concurrency` is not positive.
    """
    if not tasks:
        raise ValueError("No tasks to evaluate.")
    if concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}.")
    started = time.monotonic()
    outcomes: list[TaskOutcome] = []
    spares: queue.SimpleQueue[ChromaMemory] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for task, result in pool.map(lambda t: _run_one(llm, t, max_steps, hooks, spares), tasks):
            outcomes.append(
                TaskOutcome(
                    task_id=task.id,
                    category=task.category,
                    question=task.question,
                    answer=result.answer,
                    status=result.status,
                    success=task.check(result),
                    steps=result.n_steps,
                    model_calls=result.model_calls,
                    format_errors=sum(isinstance(s, FormatError) for s in result.steps),
                    tokens=int(result.usage.get("total_tokens", 0)),
                    seconds=result.seconds,
                )
            )
            if progress is not None:
                progress(len(outcomes), len(tasks))
    by_category: dict[str, list[TaskOutcome]] = {}
    for outcome in outcomes:
        by_category.setdefault(outcome.category, []).append(outcome)
    return EvalReport(
        model=model_name,
        overall=_score(outcomes),
        categories={name: _score(group) for name, group in sorted(by_category.items())},
        outcomes=outcomes,
        seconds=time.monotonic() - started,
    )


def plot_report(reports: dict[str, EvalReport], path: str | Path, *, title: str = "Success by category") -> Path:
    """Save a bar chart of success per category, one bar per report (e.g. before and after training).

    Args:
        reports: Label to report.
        path: The PNG file to write.
        title: The chart's title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    categories = sorted({name for report in reports.values() for name in report.categories})
    width = 0.8 / max(1, len(reports))
    figure, axes = plt.subplots(figsize=(1.4 * len(categories) + 2, 4))
    for index, (label, report) in enumerate(reports.items()):
        values = [100 * report.categories[c].success if c in report.categories else 0.0 for c in categories]
        positions = [i + index * width for i in range(len(categories))]
        bars = axes.bar(positions, values, width, label=label)
        axes.bar_label(bars, fmt="%.0f", fontsize=8)
    axes.set_xticks([i + width * (len(reports) - 1) / 2 for i in range(len(categories))], categories)
    axes.set_ylabel("success (%)")
    axes.set_ylim(0, 105)
    axes.set_title(title)
    axes.legend(loc="lower left")
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def save_report(report: EvalReport, path: str | Path) -> Path:
    """Write the report as JSON."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    return out
