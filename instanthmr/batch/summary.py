"""The end-of-batch report: counts per status, every failed or partial input, throughput."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUS_ORDER: tuple[str, ...] = ("done", "partial", "failed")


@dataclass
class BatchReport:
    """What a batch did.

    Attributes:
        output: the output folder; ``manifest``: its manifest file.
        options_hash: the hash recorded for this run's inputs.
        records: this run's manifest records, in input order.
        skipped: inputs left alone because an earlier run did them with the same options.
        seconds: wall time of the whole batch (start-up included).
        engine, workers, threads: how it ran.
        worker_info: per worker: host, pid, threads, model load seconds, resident MiB.
    """

    output: Path
    manifest: Path
    options_hash: str
    engine: str
    workers: int = 0
    threads: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    worker_info: list[dict[str, Any]] = field(default_factory=list)

    @property
    def problems(self) -> list[dict[str, Any]]:
        """Records of this run that are not ``done`` (failed or partial)."""
        return [r for r in self.records if r["status"] != "done"]

    @property
    def exit_code(self) -> int:
        """0 when every input is done (now or before), 1 when any failed or is partial."""
        return 1 if self.problems else 0

    @property
    def frames(self) -> int:
        """Frames processed by this run."""
        return sum(int(r["frames"]) for r in self.records)

    def table(self) -> str:
        """The summary table printed at the end of ``instanthmr batch``."""
        return format_table(self)


def _short(path: str, width: int = 60) -> str:
    """``path`` relative to the working folder when it is under it, cut to ``width``."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        rel = path
    name = path if rel.startswith("..") else rel
    return name if len(name) <= width else "..." + name[-(width - 3) :]


def format_table(report: BatchReport) -> str:
    """Counts per status, then one line per failed or partial input with its error."""
    total = len(report.records) + len(report.skipped)
    lines = [
        f"instanthmr batch: {total} inputs -> {report.output}",
        f"  {'status':<9}{'inputs':>8}{'frames':>9}{'persons':>9}{'seconds':>10}",
    ]
    for status in STATUS_ORDER:
        rows = [r for r in report.records if r["status"] == status]
        secs = sum(float(r["seconds"] or 0.0) for r in rows)
        frames = sum(int(r["frames"]) for r in rows)
        persons = sum(int(r["persons"]) for r in rows)
        lines.append(f"  {status:<9}{len(rows):>8}{frames:>9}{persons:>9}{secs:>10.1f}")
    lines.append(f"  {'skipped':<9}{len(report.skipped):>8}   (done earlier with the same options)")
    if report.problems:
        lines.append("not done:")
        for r in report.problems:
            lines.append(f"  {r['status']:<8} {_short(r['input'])}: {r['error']}")
    if report.records and report.seconds > 0:
        fps = report.frames / report.seconds
        per_hour = len(report.records) / report.seconds * 3600.0
        lines.append(
            f"{report.frames} frames in {report.seconds:.1f} s: {fps:.1f} frames/s, "
            f"{per_hour:.0f} inputs/hour ({report.engine}: {report.workers} worker(s) x "
            f"{report.threads} thread(s))"
        )
    lines.append(f"manifest: {report.manifest}")
    return "\n".join(lines)
