"""The outer training loop behind scripts/train.py.

`run` takes a validated `Config` and a loaded `Dataset`, resumes from the workdir's latest
usable checkpoint if there is one, and trains up to `config.steps` in fused chunks
(`train_steps`, at most `log_every` steps each). Between chunks, never inside them, it checks
for divergence, logs to ``metrics.jsonl`` and TensorBoard, updates the progress bar, writes
sample grids and starts (asynchronous) checkpoints.

On SIGTERM or SIGINT it finishes the chunk in flight, saves a checkpoint, waits for it and
raises `Preempted`; a second SIGINT stops at once. Non-finite losses or parameters raise
`Diverged` without saving, so the last good checkpoint stays the latest.

With ``config.eval_every``, every that many steps it scores `eval_num` samples (FID, MNIST
score, rarest class share, Parzen LL; `flax_gan.evaluation`), appends them to ``metrics.jsonl``,
offers the state to the best-by-FID checkpoint in ``<workdir>/best`` and warns when training
looks collapsed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flax_gan import checkpoint, evaluation, parallel
from flax_gan.classifier import ClassifierConfig
from flax_gan.config import Config
from flax_gan.data import Dataset
from flax_gan.files import write_text_atomic
from flax_gan.sampling import image_grid, sample, save_png
from flax_gan.state import GANState, create_run_state, run_keys, select, state_step
from flax_gan.step import train_steps, train_steps_many

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
TENSORBOARD_DIR = "tensorboard"
GRID_SIZE = 25  # a 5x5 grid, as the seed saved


class Preempted(Exception):
    """Training stopped on a signal after saving a checkpoint; `signum` says which."""

    def __init__(self, signum: int, step: int):
        self.signum, self.step = signum, step
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; the checkpoint is saved")


class Diverged(RuntimeError):
    """Losses or parameters became non-finite; the message names the step."""


def next_stop(step: int, config: Config) -> int:
    """The next step after `step` at which the loop must leave the device: log, sample, save or end."""
    stops = [config.steps]
    for every in (config.log_every, config.ckpt_every, config.sample_every, config.eval_every):
        if every:
            stops.append((step // every + 1) * every)
    return min(stops)


@jax.jit
def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def run(config: Config, dataset: Dataset, progress: bool = True) -> GANState:
    """Trains (or resumes) the run that `config` describes; returns the final state.

    The caller checks the workdir's saved config (`checkpoint.check_resume`) before this.
    Raises `Preempted` after a SIGTERM/SIGINT (checkpoint saved) and `Diverged` on NaN/inf.
    """
    _, train_key, sample_key = run_keys(config)
    many = config.num_seeds > 1
    mesh = parallel.run_mesh(config)  # checks the run fits this process count and these devices
    manager = checkpoint.make_manager(config.workdir)
    # Replicated on every device of the mesh; a restored checkpoint takes the same placement.
    fresh = parallel.put_replicated(create_run_state(config, dataset.images), mesh)
    main = parallel.is_main_process()  # only process 0 writes metrics, logs and samples
    state = checkpoint.restore_latest(manager, fresh, quarantine=main)
    if state is None:
        state = fresh
        log.info("starting a new run in %s", config.workdir)
    else:
        log.info("resuming from the checkpoint at step %d in %s", state_step(state), manager.directory)
    step = state_step(state)
    if main:
        _drop_metrics_after(os.path.join(config.workdir, METRICS_FILE), step)
    if step >= config.steps:
        log.info("the run is already at step %d of %d: nothing to do", step, config.steps)
        manager.close()
        return state
    if config.batch_size > dataset.images.shape[0]:
        raise ValueError(
            f"batch_size {config.batch_size} is larger than the {dataset.images.shape[0]} training images"
        )

    images = parallel.put_replicated(dataset.images, mesh)
    train_key = parallel.put_replicated(train_key, mesh)
    mesh = mesh if mesh.size > 1 else None
    if many:
        log.info("training %d GANs at once (seeds %d to %d) under vmap", config.num_seeds, config.seed,
                 config.seed + config.num_seeds - 1)
    if mesh is not None:
        log.info("data parallel over %d devices: %d images per device per step", mesh.size,
                 config.batch_size // mesh.size)
    evaluator = writer = bar = None
    window: list[dict[str, np.ndarray]] = []
    saved = step if step else None  # the step of the latest checkpoint, if any
    last_row: dict[str, Any] | None = None
    stop = _StopRequest()
    try:  # from here on, the finally closes what was opened, whatever fails
        if config.eval_every and main:
            evaluator = _Evaluation(config, dataset, sample_key)  # may train the classifier (minutes, once)
        writer = _tensorboard(config.workdir, step) if main else None
        bar = _progress_bar(config.steps, step, progress and main)
        window_start, window_steps = time.perf_counter(), 0
        with stop:
            while step < config.steps:
                num = next_stop(step, config) - step
                if many:
                    new_state, metrics = train_steps_many(state, images, train_key, num, config.batch_size)
                else:
                    new_state, metrics = train_steps(state, images, train_key, num, config.batch_size, mesh)
                metrics, finite = jax.device_get((metrics, _all_finite(new_state)))  # one sync per chunk
                _check_finite(metrics, bool(finite), step, saved, config.seed)
                state, step = new_state, step + num
                window.append(metrics)
                window_steps += num
                if bar is not None:
                    bar.update(num)
                if step % config.log_every == 0 or step == config.steps:
                    last_row = _summary(step, window, window_steps / (time.perf_counter() - window_start))
                    window, window_steps, window_start = [], 0, time.perf_counter()
                    if main:
                        _write_row(config, last_row, writer, bar)
                if evaluator is not None and (step % config.eval_every == 0 or step == config.steps):
                    scores = evaluator.run(parallel.local_copy(state), last_row, writer)
                    if bar is not None:
                        bar.set_postfix(fid=f"{scores['fid']:.2f}", score=f"{scores['score']:.2f}")
                if main and (step % config.sample_every == 0 or step == config.steps):
                    _save_grids(config, parallel.local_copy(state), sample_key, step, writer)
                if step % config.ckpt_every == 0 or step == config.steps or stop.signum is not None:
                    checkpoint.save(manager, state)
                    saved = step
                if stop.signum is not None and step < config.steps:
                    manager.wait_until_finished()
                    raise Preempted(stop.signum, step)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        if evaluator is not None:
            evaluator.close()
        manager.wait_until_finished()
        manager.close()
    log.info("done: step %d, checkpoint in %s", step, checkpoint.checkpoint_dir(config.workdir))
    return state


class _Evaluation:
    """Scores during training: metrics.jsonl rows, TensorBoard scalars, the best checkpoint, collapse warnings."""

    def __init__(self, config: Config, dataset: Dataset, sample_key: jax.Array):
        self.config = config
        self.key = jax.random.fold_in(sample_key, 1)  # the same noise at every evaluation
        reference = evaluation.reference_sets(dataset, config.test_data, config.data_dir)
        log.info("evaluation every %d steps on %d samples; %s", config.eval_every, config.eval_num, reference.note)
        self.evaluator = evaluation.Evaluator(
            reference, classifier_config=ClassifierConfig(steps=config.classifier_steps))
        log.info("classifier accuracy on the %s images: %.4f", self.evaluator.classifier_accuracy_on,
                 self.evaluator.classifier_accuracy)
        self.best = checkpoint.make_manager(config.workdir, best=True)
        self.previous_g_loss: float | None = None

    def run(self, state: GANState, last_row: dict[str, Any] | None, writer) -> dict[str, Any]:
        step = state_step(state)
        scores = self.evaluator.score_state(state, self.key, self.config.eval_num)
        d_loss = last_row["d_loss"] if last_row else None
        g_loss = last_row["g_loss"] if last_row else None
        signs = evaluation.collapse_signs(scores, d_loss, g_loss, self.previous_g_loss)
        self.previous_g_loss = g_loss
        row = {"step": step, **{k: scores[k] for k in EVAL_KEYS}, "collapse": bool(signs)}
        _append_jsonl(os.path.join(self.config.workdir, METRICS_FILE), row)
        if writer is not None:
            for name in EVAL_KEYS[:-1]:  # not parzen_sigma, a list
                writer.add_scalar(f"eval/{name}", scores[name], step)
        if signs:
            log.warning("step %d: training looks collapsed: %s; the best checkpoint by FID is kept in %s",
                        step, "; ".join(signs), self.best.directory)
        checkpoint.save_best(self.best, state, scores["fid"])
        return scores

    def close(self) -> None:
        self.best.wait_until_finished()
        self.best.close()


# The scores an evaluation appends to metrics.jsonl.
EVAL_KEYS = ("fid", "score", "min_class_share", "parzen", "parzen_se", "parzen_sigma")


def _write_row(config: Config, row: dict[str, Any], writer, bar) -> None:
    """One logged row to metrics.jsonl, TensorBoard (each GAN's too) and the progress bar."""
    _append_jsonl(os.path.join(config.workdir, METRICS_FILE), row)
    if writer is not None:
        for name, value in row.items():
            if name == "per_seed":
                for metric, values in value.items():
                    for i, v in enumerate(values):
                        writer.add_scalar(f"{metric}/seed_{config.seed + i}", v, row["step"])
            elif name != "step":
                writer.add_scalar(name, value, row["step"])
    if bar is not None:
        bar.set_postfix(d_loss=f"{row['d_loss']:.3f}", g_loss=f"{row['g_loss']:.3f}", steps_s=f"{row['steps_per_sec']:.0f}")


def _save_grids(config: Config, state: GANState, sample_key: jax.Array, step: int, writer) -> None:
    """A 5x5 grid per GAN: samples/step_N.png, or samples/seed_S/step_N.png with num_seeds > 1."""
    for i in range(config.num_seeds):
        if config.num_seeds == 1:
            one, key, folder, tag = state, sample_key, "", "samples"
        else:
            seed = config.seed + i
            one, key, folder, tag = select(state, i), sample_key[i], f"seed_{seed}", f"samples/seed_{seed}"
        grid = image_grid(np.asarray(sample(one, key, GRID_SIZE)))
        save_png(os.path.join(config.workdir, SAMPLES_DIR, folder, f"step_{step:07d}.png"), grid)
        if writer is not None:
            writer.add_image(tag, grid, step, dataformats="HW")


def _check_finite(metrics: dict[str, np.ndarray], params_finite: bool, start: int, saved: int | None,
                  seed: int = 0) -> None:
    losses = np.stack([metrics["d_loss"], metrics["g_loss"]])  # (2, steps) or (2, steps, seeds)
    bad = ~np.all(np.isfinite(losses), axis=0)
    if bad.any():
        i, *gan = np.unravel_index(int(np.argmax(bad)), bad.shape)
        which = f" in the GAN of seed {seed + int(gan[0])}" if gan else ""
        d, g = losses[0][(i, *gan)], losses[1][(i, *gan)]
        where = f"losses became non-finite at step {start + i + 1}{which} (d_loss={d}, g_loss={g})"
    elif not params_finite:
        where = f"parameters became non-finite by step {start + len(bad)}"
    else:
        return
    kept = f"the last checkpoint (step {saved}) is kept" if saved is not None else "no checkpoint was saved"
    raise Diverged(f"training diverged: {where}; {kept}; try a smaller --lr or another --seed")


class _StopRequest:
    """Within `with`, the first SIGTERM/SIGINT sets `signum`; a second SIGINT interrupts at once."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals reach only the main thread
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum
        log.warning("%s: finishing the current chunk and saving a checkpoint (Ctrl-C again to stop at once)",
                    signal.Signals(signum).name)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False


def _tensorboard(workdir: str, step: int):
    """A tensorboardX writer in <workdir>/tensorboard, dropping events past `step` on resume."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        log.warning("tensorboardX is not installed: no TensorBoard logs (pip install tensorboardX)")
        return None
    return SummaryWriter(os.path.join(workdir, TENSORBOARD_DIR), purge_step=step + 1 if step else None)


def _summary(step: int, window: list[dict[str, np.ndarray]], steps_per_sec: float) -> dict[str, Any]:
    """Means over the window's steps (and GANs); with several GANs also each GAN's, under per_seed."""
    row: dict[str, Any] = {"step": step}
    per_seed: dict[str, list[float]] = {}
    for name in window[0]:
        values = np.concatenate([m[name] for m in window])  # (steps,) or (steps, seeds)
        row[name] = float(np.mean(values))
        if values.ndim == 2:
            per_seed[name] = [float(v) for v in values.mean(axis=0)]
    row["steps_per_sec"] = float(steps_per_sec)
    if per_seed:
        row["per_seed"] = per_seed
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
        write_text_atomic(path, "".join(kept))


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
