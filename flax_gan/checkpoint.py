"""The run's workdir: orbax checkpoints of the `GANState` and the run's saved config.

Layout of a workdir::

    config.json          the run's Config (trajectory settings are checked on resume)
    checkpoints/<step>/  orbax checkpoints, the last `max_to_keep` kept
    best/<step>/         with --eval-every: the checkpoint with the lowest FID so far
    metrics.jsonl        one JSON line per logged step (written by `loop`)
    samples/             5x5 sample grids (written by `loop`)

Orbax writes each checkpoint into a temporary folder and renames it when complete, so a run
killed during a save (even ``kill -9``) leaves the previous checkpoints intact, and the
partial one is ignored and cleaned up on the next start.
"""

from __future__ import annotations

import json
import logging
import os

import jax
import orbax.checkpoint as ocp

from flax_gan.config import Config, ConfigError
from flax_gan.files import write_text_atomic
from flax_gan.state import GANState, state_step

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"  # the checkpoint with the lowest FID so far (train.py --eval-every)
DAMAGED_DIR = "damaged_checkpoints"

log = logging.getLogger(__name__)


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)


def make_manager(workdir: str, max_to_keep: int = 3, read_only: bool = False,
                 best: bool = False) -> ocp.CheckpointManager:
    """An orbax CheckpointManager for `<workdir>/checkpoints` (async saves, last 3 kept).

    With `best`, the manager of `<workdir>/best` instead: orbax keeps the one checkpoint with
    the lowest ``fid`` among those saved through `save_best`.
    """
    best_options = dict(best_fn=lambda m: m["fid"], best_mode="min", keep_checkpoints_without_metrics=False)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None if read_only else (1 if best else max_to_keep),
        save_interval_steps=0 if read_only else 1,
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
        enable_async_checkpointing=True,
        **(best_options if best else {}),
    )
    directory = os.path.join(os.path.abspath(workdir), BEST_DIR) if best else checkpoint_dir(workdir)
    return ocp.CheckpointManager(directory, options=options, item_handlers=ocp.StandardCheckpointHandler())


def save(manager: ocp.CheckpointManager, state: GANState) -> None:
    """Starts an (async) save of `state` under its step; `manager.wait_until_finished()` ends it."""
    manager.save(state_step(state), args=ocp.args.StandardSave(state), force=True)


def save_best(manager: ocp.CheckpointManager, state: GANState, fid: float) -> None:
    """Offers `state` with its FID to the best-checkpoint manager (`make_manager(..., best=True)`).

    A step already there is skipped: a resumed run recomputes the same state bit for bit.
    """
    step = state_step(state)
    if step not in manager.all_steps():
        manager.save(step, args=ocp.args.StandardSave(state), metrics={"fid": float(fid)}, force=True)


def restore_step(manager: ocp.CheckpointManager, template: GANState, step: int) -> GANState:
    """The checkpoint at `step` restored into `template`'s structure; ConfigError if it is absent."""
    steps = sorted(manager.all_steps())
    if step not in steps:
        raise ConfigError(f"no checkpoint at step {step} in {manager.directory}; there are: {', '.join(map(str, steps)) or 'none'}")
    return _restore(manager, step, template)


def restore_latest(manager: ocp.CheckpointManager, template: GANState, quarantine: bool = False) -> GANState | None:
    """The latest usable checkpoint restored into `template`'s structure, or None if there is none.

    `template` (e.g. a fresh `create_state`) gives the pytree types, shapes and dtypes:
    restoring against it returns a `GANState` with real optax states, not plain dicts.

    A checkpoint that cannot be read (files truncated or deleted after it was written) is
    skipped with a warning that names it and the one used instead; with `quarantine`, it is
    moved to ``<workdir>/damaged_checkpoints/`` (kept for inspection, out of the way of new
    saves). If checkpoints exist but none is usable, raises `ConfigError` listing them: a run
    never starts afresh silently over old checkpoints.
    """
    failures: list[tuple[int, str]] = []
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            state = _restore(manager, step, template)
        except ConfigError:
            raise  # a different model, not damage
        except Exception as e:  # orbax and tensorstore raise many types for damaged files
            failures.append((step, _first_line(e)))
            log.warning("checkpoint %d in %s cannot be read (%s)", step, manager.directory, _first_line(e))
            continue
        if failures:
            damaged = ", ".join(str(s) for s, _ in failures)
            log.warning("resuming from checkpoint %d instead of damaged checkpoint(s) %s", step, damaged)
            if quarantine:
                _quarantine(manager, [s for s, _ in failures])
        return state
    if failures:
        found = "; ".join(f"step {s}: {why}" for s, why in failures)
        raise ConfigError(
            f"no usable checkpoint in {manager.directory} ({found}); move that folder away to start afresh"
        )
    return None


def _restore(manager: ocp.CheckpointManager, step: int, template: GANState) -> GANState:
    stored = _shapes(manager.item_metadata(step).tree)
    wanted = _shapes(template)
    if stored != wanted:
        path = next(p for p in [*wanted, *stored] if stored.get(p) != wanted.get(p))
        raise ConfigError(
            f"checkpoint {step} in {manager.directory} does not match this run's model: "
            f"{'/'.join(path)} is {stored.get(path, 'absent')} there and {wanted.get(path, 'absent')} here"
        )
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    try:
        return manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except ValueError as e:
        if "tree structures do not match" not in str(e):
            raise  # damage, handled by the caller
        # A different layout (another model or optimizer), not damage: never quarantine it.
        raise ConfigError(
            f"checkpoint {step} in {manager.directory} holds a state of another layout than this run's "
            f"(model, optimizer or EMA settings differ): {_first_line(e)}"
        ) from None


def _quarantine(manager: ocp.CheckpointManager, steps: list[int]) -> None:
    directory = str(manager.directory)
    target = os.path.join(os.path.dirname(directory), DAMAGED_DIR)
    os.makedirs(target, exist_ok=True)
    for step in steps:
        source = os.path.join(directory, str(step))
        dest = os.path.join(target, str(step))
        suffix = 1
        while os.path.exists(dest):
            dest, suffix = os.path.join(target, f"{step}.{suffix}"), suffix + 1
        os.replace(source, dest)
        log.warning("moved damaged checkpoint %d to %s", step, dest)
    manager.reload()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def _shapes(tree) -> dict[tuple[str, ...], tuple[int, ...]]:
    """{path: shape} of a pytree's leaves, with paths spelled the same for states and metadata."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = tuple(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k)))) for k in path)
        out[key] = tuple(leaf.shape)
    return out


def has_checkpoint(workdir: str) -> bool:
    """True if `<workdir>/checkpoints` holds at least one finished checkpoint (read-only check)."""
    if not os.path.isdir(checkpoint_dir(workdir)):
        return False
    return make_manager(workdir, read_only=True).latest_step() is not None


def read_config(workdir: str) -> Config | None:
    """The Config saved in `workdir`, or None if there is none."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return Config.from_dict(json.load(f))
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e


def write_config(workdir: str, config: Config) -> None:
    """Writes `config` to `<workdir>/config.json` atomically (a crash leaves the old file)."""
    os.makedirs(workdir, exist_ok=True)
    write_text_atomic(os.path.join(workdir, CONFIG_FILE), config.to_json() + "\n")


def check_resume(saved: Config, config: Config) -> None:
    """Raises ConfigError if `config` would not continue the run that `saved` describes."""
    diff = saved.trajectory_diff(config)
    if diff:
        name, old, new = diff[0]
        more = f" (and {', '.join(d[0] for d in diff[1:])})" if len(diff) > 1 else ""
        raise ConfigError(
            f"{name} is {new!r} but the run in {config.workdir} used {old!r}{more}; "
            "resume with the same settings or use a new --workdir"
        )
