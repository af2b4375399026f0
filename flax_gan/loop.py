"""The outer training loop behind scripts/train.py.

`run` takes a validated `Config` and a loaded `Dataset`, resumes from the workdir's latest
checkpoint if there is one, and trains up to `config.steps` in fused chunks
(`train_steps`). Between chunks, never inside them, it logs to ``metrics.jsonl``, updates the
progress bar, writes sample grids and starts (asynchronous) checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import jax
import numpy as np

from flax_gan import checkpoint
from flax_gan.config import Config
from flax_gan.data import Dataset
from flax_gan.sampling import image_grid, sample, save_png
from flax_gan.state import GANState, create_state, seed_keys
from flax_gan.step import train_steps

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
GRID_SIZE = 25  # a 5x5 grid, as the seed saved


def next_stop(step: int, config: Config) -> int:
    """The next step after `step` at which the loop must leave the device: log, sample, save or end."""
    stops = [config.steps]
    for every in (config.log_every, config.ckpt_every, config.sample_every):
        stops.append((step // every + 1) * every)
    return min(stops)


def run(config: Config, dataset: Dataset, progress: bool = True) -> GANState:
    """Trains (or resumes) the run that `config` describes; returns the final state.

    The caller checks the workdir's saved config (`checkpoint.check_resume`) before this.
    """
    init_key, train_key, sample_key = seed_keys(config.seed)
    manager = checkpoint.make_manager(config.workdir)
    fresh = create_state(config, init_key)
    state = checkpoint.restore_latest(manager, fresh)
    if state is None:
        state = fresh
        log.info("starting a new run in %s", config.workdir)
    else:
        log.info("resuming from the checkpoint at step %d in %s", int(state.step), manager.directory)
    step = int(state.step)
    _drop_metrics_after(os.path.join(config.workdir, METRICS_FILE), step)
    if step >= config.steps:
        log.info("the run is already at step %d of %d: nothing to do", step, config.steps)
        manager.close()
        return state
    if config.batch_size > dataset.images.shape[0]:
        raise ValueError(
            f"batch_size {config.batch_size} is larger than the {dataset.images.shape[0]} training images"
        )

    images = jax.device_put(dataset.images)
    grid_noise_key = sample_key  # the same z for every grid, so grids over time are comparable
    bar = _progress_bar(config.steps, step, progress)
    window: list[dict[str, np.ndarray]] = []
    window_start = time.perf_counter()
    window_steps = 0
    try:
        while step < config.steps:
            num = next_stop(step, config) - step
            state, metrics = train_steps(state, images, train_key, num, config.batch_size)
            metrics = jax.device_get(metrics)  # the one host sync per chunk
            step += num
            window.append(metrics)
            window_steps += num
            if bar is not None:
                bar.update(num)
            if step % config.log_every == 0 or step == config.steps:
                elapsed = time.perf_counter() - window_start
                row = _summary(step, window, window_steps / elapsed)
                _append_jsonl(os.path.join(config.workdir, METRICS_FILE), row)
                if bar is not None:
                    bar.set_postfix(d_loss=f"{row['d_loss']:.3f}", g_loss=f"{row['g_loss']:.3f}",
                                    steps_s=f"{row['steps_per_sec']:.0f}")
                window, window_steps, window_start = [], 0, time.perf_counter()
            if step % config.sample_every == 0 or step == config.steps:
                grid = image_grid(np.asarray(sample(state, grid_noise_key, GRID_SIZE)))
                save_png(os.path.join(config.workdir, SAMPLES_DIR, f"step_{step:07d}.png"), grid)
            if step % config.ckpt_every == 0 or step == config.steps:
                checkpoint.save(manager, state)
    finally:
        if bar is not None:
            bar.close()
        manager.wait_until_finished()
        manager.close()
    log.info("done: step %d, checkpoint in %s", step, checkpoint.checkpoint_dir(config.workdir))
    return state


def _summary(step: int, window: list[dict[str, np.ndarray]], steps_per_sec: float) -> dict[str, Any]:
    row: dict[str, Any] = {"step": step}
    for name in window[0]:
        row[name] = float(np.mean(np.concatenate([m[name] for m in window])))
    row["steps_per_sec"] = float(steps_per_sec)
    return row


def _append_jsonl(path: str, row: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def _drop_metrics_after(path: str, step: int) -> None:
    """Removes lines past `step` (logged after the checkpoint a resumed run restarts from)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.readlines()
    kept = [line for line in lines if _line_step(line) is not None and _line_step(line) <= step]
    if len(kept) != len(lines):
        checkpoint.write_text_atomic(path, "".join(kept))


def _line_step(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None  # a line cut short by a crash


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=1.0)
