"""Benchmark building blocks: timers, statistics, machine description, HMR-only runs.

``tools/bench.py`` (``instanthmr bench``) is a thin layer over these functions. Times are
wall-clock milliseconds from ``time.perf_counter``; warm-up runs are excluded; results are
reported as p50 / p95 / mean so one noisy run does not decide a comparison.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..errors import OptionError
from ..hmr.identity import model_facts
from ..hmr.model import HMRModel
from ..runtime.contract import CROP_SIZE
from ..runtime.session import naive_session, usable_cpus

HMR_GFLOP_PER_PERSON = 13.45  # the released architecture at 224 px (our definition)
PACKAGES = ("instanthmr", "numpy", "onnxruntime", "onnxruntime-gpu", "opencv-python",
            "rerun-sdk", "supervision", "scipy", "torch", "rfdetr")  # fmt: skip


def stats(values_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99, mean, min, max and count of a list of milliseconds (zeros when empty)."""
    v = np.asarray(values_ms, dtype=np.float64)
    if v.size == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0, "min": 0.0, "max": 0.0, "n": 0}
    return {
        "p50": float(np.percentile(v, 50)),
        "p95": float(np.percentile(v, 95)),
        "p99": float(np.percentile(v, 99)),
        "mean": float(v.mean()),
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    """Milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def matmul_gflops(n: int = 1024, seconds: float = 1.0) -> float:
    """float32 matrix-product rate of this machine through numpy (best of repeated runs)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, object]:
    """CPU model, core counts, load average, GPUs, OS, Python and package versions."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    usable = usable_cpus()
    return {
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": usable,
        "load_average": load_average(),
        "gpus": _gpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "onnxruntime_providers": ort.get_available_providers(),
    }


def model_info(path: str | os.PathLike[str], random_init: bool) -> dict[str, object]:
    """File name, SHA-256, the random-init flag and what the file is (architecture,
    parameters, GFLOP, precision, pinned: :func:`~instanthmr.hmr.identity.model_facts`)."""
    facts = model_facts(path)
    return {"path": str(path), "sha256": facts.sha256, "random_init": bool(random_init),
            **{k: v for k, v in facts.as_dict().items() if k != "sha256"}}  # fmt: skip


def check_timeable(hmr: HMRModel) -> None:
    """Refuse to time a model whose cost says nothing about InstantHMR's (the stand-in)."""
    from ..hmr.kinds import STANDIN

    if hmr.model_kind.name == STANDIN:
        raise OptionError(
            f"{hmr.model_path.name} is the stand-in (MediaPipe BlazePose), not InstantHMR: its "
            "cost says nothing about InstantHMR's HMR stage. Time the released architecture "
            "instead (`python tools/export_onnx.py --random-init --output FILE`, then "
            "--model FILE)"
        )


def _random_inputs(n: int, seed: int = 0, size: int = CROP_SIZE) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = rng.standard_normal((n, 3, size, size), dtype=np.float32)
    cond = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    return img, cond


def interleave(
    runs: dict[str, Callable[[], object]], repeats: int, block: int = 3
) -> tuple[dict[str, list[float]], list[list[float] | None]]:
    """Time every callable in rotating blocks of ``block`` calls (one untimed call at each
    switch), ``repeats`` timed calls each, so all see the same machine load. Returns the
    milliseconds per key and the load average at the start of every round."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    loads: list[list[float] | None] = []
    for fn in runs.values():
        fn()
        fn()
    for _ in range(max(1, -(-repeats // block))):
        loads.append(load_average())
        for key, fn in runs.items():
            fn()  # untimed: the previous session's threads settle
            times[key] += time_calls(fn, block, warmup=0)
    return times, loads


def bench_hmr(
    model: str | os.PathLike[str],
    device: str,
    batches: Iterable[int],
    repeats: int = 20,
    threads: int | None = None,
    baseline: bool = True,
    precision: str = "auto",
    block: int = 3,
) -> dict[str, object]:
    """HMR model alone: per-person latency for each batch size, and the naive baseline.

    The baseline is the same file with default session options (no fp16 -> fp32 on CPU,
    default threads) and one call per person: what a first script would do. Ours and the
    baseline are measured interleaved in blocks of ``block`` calls, one untimed call at each
    switch, so both see the same machine load and neither pays for the other's spinning
    threads; measuring one after the other made whichever ran first look slower (the A/B
    in docs/performance.md).
    """
    hmr = HMRModel(model, device=device, threads=threads, warmup=False, precision=precision)
    check_timeable(hmr)
    sess = naive_session(hmr.model_path, device) if baseline else None
    runs: dict[str, Callable[[], object]] = {}
    for b in batches:
        img, cond = _random_inputs(b, size=hmr.image_size)
        runs[str(b)] = lambda img=img, cond=cond: hmr.infer(img, cond)
    if sess is not None:
        if hmr.signature.bound_by != "name" or hmr.signature.batch is not None:
            raise ValueError("the naive baseline needs a file with named outputs and a "
                             "dynamic batch; pass --no-baseline")  # fmt: skip
        names = list(hmr.signature.outputs.values())
        feeds1 = hmr._feeds(*_random_inputs(1, size=hmr.image_size))
        runs["naive"] = lambda: sess.run(names, feeds1)
    times, loads = interleave(runs, repeats, block)
    per_batch = {k: stats([t / int(k) for t in v]) for k, v in times.items() if k != "naive"}
    result: dict[str, object] = {
        "provider": hmr.provider,
        "precision": hmr.precision,
        "load_average_per_round": loads,
        "model": model_info(hmr.model_path, hmr.random_init),
        "loaded_file": str(hmr.model_session.path),
        "threads": hmr.runtime.threads,
        "hmr_ms_per_person": per_batch,
        "hmr_ms_per_person_p50": {k: v["p50"] for k, v in per_batch.items()},
        "hmr_ms_per_person_p95": {k: v["p95"] for k, v in per_batch.items()},
        "interleaved_block": block,
    }
    if sess is not None:
        base = stats(times["naive"])
        result["baseline_ms_per_person"] = base
        result["baseline_ms_per_person_p50"] = base["p50"]
        result["baseline_ms_per_person_p95"] = base["p95"]
        result["speedup_vs_baseline"] = {
            k: base["p50"] / v["p50"] for k, v in per_batch.items() if v["p50"] > 0
        }
    return result


def hmr_call_ms(hmr: HMRModel, repeats: int = 20, batch: int = 1) -> list[float]:
    """Milliseconds of ``repeats`` HMR calls on ``batch`` random crops (after 2 untimed).

    With ``batch=1`` this is the limit the model sets on a live stream of one person:
    no pipeline can deliver more than ``1000 / p50`` frames per second with this session.
    """
    img, cond = _random_inputs(batch, size=hmr.image_size)
    return time_calls(lambda: hmr.infer(img, cond), repeats)


def bench_hmr_side_by_side(
    entries: Sequence[tuple[str, str | os.PathLike[str], str]],
    batches: Iterable[int],
    repeats: int = 15,
    threads: int | None = None,
    block: int = 3,
    device: str = "cpu",
) -> dict[str, object]:
    """Several HMR files (``(label, path, precision)``) at each batch size, interleaved in
    one process (:func:`interleave`), so their ratios come from the same machine load.

    Returns per label its model facts, the precision that ran, and ms per person (stats)
    per batch size; plus the load average at every round.
    """
    models = {label: HMRModel(path, device=device, threads=threads, warmup=False,
                              precision=precision)
              for label, path, precision in entries}  # fmt: skip
    runs: dict[str, Callable[[], object]] = {}
    for b in batches:
        for label, hmr in models.items():
            img, cond = _random_inputs(b, size=hmr.image_size)
            runs[f"{label}@{b}"] = lambda hmr=hmr, img=img, cond=cond: hmr.infer(img, cond)
    times, loads = interleave(runs, repeats, block)
    out: dict[str, object] = {"load_average_per_round": loads, "repeats": repeats,
                              "block": block, "models": {}}  # fmt: skip
    for label, hmr in models.items():
        per = {key.split("@")[1]: stats([t / int(key.split("@")[1]) for t in v])
               for key, v in times.items() if key.split("@")[0] == label}  # fmt: skip
        out["models"][label] = {  # type: ignore[index]
            "model": model_info(hmr.model_path, hmr.random_init),
            "precision": hmr.precision, "provider": hmr.provider,
            "loaded_file": str(hmr.model_session.path), "threads": hmr.runtime.threads,
            "ms_per_person": per, "ms_per_person_p50": {b: v["p50"] for b, v in per.items()},
        }  # fmt: skip
    return out


def compute_floor(gflop: float, gflops_rate: float) -> float:
    """Milliseconds that ``gflop`` of work needs at ``gflops_rate`` GFLOP/s."""
    return gflop / gflops_rate * 1e3


STAGE_KEYS: tuple[str, ...] = ("decode", "detect", "crop", "hmr", "track", "viewer", "total")


def bench_pipeline_run(
    pipeline: Any,
    frames: Callable[[], Iterator[Any]],
    *,
    max_frames: int | None = None,
    warmup_frames: int = 5,
    viewer: Any = None,
) -> dict[str, object]:
    """One pass of a pipeline over a frame source, timing every stage per frame.

    Args:
        pipeline: a :class:`~instanthmr.pipeline.PosePipeline` (reset before the pass).
        frames: makes a fresh iterator of :class:`~instanthmr.sources.files.Frame` objects.
        max_frames: stop after this many timed frames.
        warmup_frames: frames run first and left out of every statistic.
        viewer: optional sink with ``log_frame(image, frame_result)`` timed as "viewer".

    ``total`` is decode + the pipeline's own total + viewer, so ``fps`` is end to end.
    ``frame_ms_p50/p95/p99/max`` are over that per-frame total, every timed frame
    (detector frames included): the hitches a viewer sees. ``pipeline_overhead`` is the
    pipeline's time outside the two model calls (crop, tracking, smoothing, bookkeeping).

    With an async detector (``pipeline.async_mode``), the first frame waits for its
    detection and the warm-up frames start after it is merged (before it, frames hold
    nobody and cost nothing), and ``detector_latency_frames`` says how many frames after
    the frame it saw each detection was merged; ``detector_ms_background`` is the worker's
    own time per detection. In synchronous use the latency is 0.
    """
    pipeline.reset()
    rows: dict[str, list[float]] = {k: [] for k in (*STAGE_KEYS, "pipeline_overhead")}
    persons: list[int] = []
    ran: list[bool] = []
    lags: list[float] = []
    reasons: dict[str, int] = {}
    it = frames()
    seen = 0
    waiting = getattr(pipeline, "async_mode", None) is not None  # for the first detection
    while max_frames is None or len(persons) < max_frames:
        t0 = time.perf_counter()
        frame = next(it, None)
        decode = (time.perf_counter() - t0) * 1e3
        if frame is None:
            break
        result = pipeline.predict(
            frame.image, frame_index=frame.index, timestamp=frame.timestamp, smooth=True
        )
        view = 0.0
        if viewer is not None:
            t0 = time.perf_counter()
            viewer.log_frame(frame.image, result)
            view = (time.perf_counter() - t0) * 1e3
        if waiting:  # async: frames before the first merged detection hold nobody
            waiting = not result.detector_ran
            if waiting and pipeline.detector_worker is not None:
                pipeline.detector_worker.wait()  # start timing from a known state
            continue
        seen += 1
        if seen <= warmup_frames:
            continue
        if result.detector_ran and result.detection_frame is not None:
            lags.append(float(result.frame_index - result.detection_frame))
        t = result.timings
        for key, value in (("decode", decode), ("detect", t.detect), ("crop", t.crop),
                           ("hmr", t.hmr), ("track", t.track), ("viewer", view),
                           ("total", decode + t.total + view),
                           ("pipeline_overhead", t.total - t.detect - t.hmr)):  # fmt: skip
            rows[key].append(value)
        persons.append(len(result))
        ran.append(result.detector_ran)
        if result.detect_reason:
            reasons[result.detect_reason] = reasons.get(result.detect_reason, 0) + 1
    n = len(persons)
    total_s = sum(rows["total"]) / 1e3
    frame, lag = stats(rows["total"]), stats(lags)
    worker = getattr(pipeline, "detector_worker", None)
    background = list(getattr(worker, "run_ms", []))
    if worker is not None:
        pipeline.close()  # no detection left running into the next measurement
    per_person = [o / p for o, p in zip(rows["pipeline_overhead"], persons, strict=True) if p]
    return {
        "frames": n,
        "fps": n / total_s if total_s > 0 else 0.0,
        "persons_per_frame": float(np.mean(persons)) if n else 0.0,
        "detector_runs_per_frame": float(np.mean(ran)) if n else 0.0,
        "detect_reasons": reasons,
        "pipeline_overhead_ms_p50": stats(rows["pipeline_overhead"])["p50"],
        "pipeline_overhead_ms_per_person_p50": stats(per_person)["p50"],
        **{f"frame_ms_{k}": frame[k] for k in ("p50", "p95", "p99", "max")},
        "detector_latency_frames": {k: lag[k] for k in ("p50", "mean", "max", "n")},
        "detector_ms_background": stats(background),
        "stages": {k: stats(v) for k, v in rows.items()},
    }


def bench_detectors(
    detectors: Sequence[Any], images: Sequence[np.ndarray], repeats: int = 10, warmup: int = 2
) -> list[dict[str, Any]]:
    """Per-frame latency of several detectors measured side by side, interleaved.

    Each timed frame goes to every detector in turn, the order rotating from frame to
    frame, so a change of machine load hits them all alike; frames cycle through
    ``images``. ``warmup`` untimed calls each first. One row per detector: what it is
    (:func:`~instanthmr.detector.choice.describe_detector`) and its ``ms`` statistics.
    """
    from ..detector.choice import describe_detector

    if not detectors or not images:
        raise ValueError("bench_detectors needs at least one detector and one image")
    for det in detectors:
        for i in range(warmup):
            det.detect(images[i % len(images)])
    ms: list[list[float]] = [[] for _ in detectors]
    n = len(detectors)
    for i in range(repeats):
        image = images[i % len(images)]
        for j in (*range(i % n, n), *range(i % n)):
            t0 = time.perf_counter()
            detectors[j].detect(image)
            ms[j].append((time.perf_counter() - t0) * 1e3)
    return [
        {**(describe_detector(d) or {}), "ms": stats(m)} for d, m in zip(detectors, ms, strict=True)
    ]
