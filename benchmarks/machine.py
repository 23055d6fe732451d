"""What a benchmark ran on, for its JSON: platform, CPU, Python and the versions of the packages it compares."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Sequence
from typing import Any


def machine_info(packages: Sequence[str]) -> dict[str, Any]:
    """The machine, agentkit's version and those of `packages` (None for one that is not installed)."""
    versions: dict[str, str | None] = {}
    for package in [*packages, "agentkit"]:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model() or platform.processor(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": affinity,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": versions,
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
