"""``agentkit pairs LOG --out DIR``: DPO pairs and KTO rows from a reward log (see `agentkit.pairs`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agentkit.errors import ConfigError
from agentkit.pairs import write_pairs

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``pairs`` subcommand to an ``argparse`` subparsers object and return its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pairs", help="turn a reward log into DPO pairs and KTO rows in TRL's conversational format"
    )
    parser.add_argument("log", help="the reward log (SQLite file written by agentkit.rewards.RewardLogger)")
    parser.add_argument("--out", required=True, help="folder for dpo/, kto/ and summary.json")
    parser.add_argument(
        "--margin", type=float, default=0.5, help="least reward gap between chosen and rejected (default: 0.5)"
    )
    parser.add_argument(
        "--max-pairs-per-task", type=int, default=1, help="most pairs per task and model version (default: 1)"
    )
    parser.add_argument(
        "--source",
        action="append",
        dest="sources",
        choices=("env", "rule", "judge", "feedback"),
        help="reward sources that count; repeat for several (default: all)",
    )
    parser.add_argument("--model", default=None, help="only episodes of this model id (default: every version)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``agentkit pairs``.

    Returns:
        0 when pairs or KTO rows were written, 1 when none could be built (the reason is printed), 2 on a bad log
        or bad settings.
    """
    try:
        stats = write_pairs(
            args.log,
            args.out,
            margin=args.margin,
            max_pairs_per_task=args.max_pairs_per_task,
            sources=args.sources,
            model=args.model,
        )
    except ConfigError as exc:
        print(f"agentkit pairs: error: {exc}", file=sys.stderr)
        return 2
    if not stats.pairs and not stats.kto_rows:
        print(
            f"agentkit pairs: no pairs or KTO rows could be built from {args.log}. {stats.explain()} Pairs need "
            "several rollouts per task (sampled at temperature > 0) whose rewards differ by the margin; KTO rows "
            "need thumbs feedback.",
            file=sys.stderr,
        )
        return 1
    print(f"Wrote {stats.pairs} DPO pairs and {stats.kto_rows} KTO rows to {args.out} ({stats.explain()})")
    return 0
