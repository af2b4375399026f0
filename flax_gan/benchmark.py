"""Speed measurements: the project's step against the matmul ceiling and the seed's PyTorch loop.

Used by scripts/benchmark.py. Every number is measured in the run that reports it: the project's
steps/s (a Python loop over the jitted `train_step`, and the fused `train_steps`), the float32
matmul rate that OpenBLAS (through numpy) reaches on the very matmuls of one step (the ceiling),
and, when PyTorch is installed, the seed's PyTorch loop on the same data, run alternately with
the project so that outside load hits both alike.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from flax_gan.state import GANSpec, create_state, seed_keys
from flax_gan.step import train_step, train_steps

IMAGE_SIZE = 28 * 28


def step_matmul_shapes(batch: int, spec: GANSpec = GANSpec()) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matmul in one `train_step` (as XLA runs it, with G's forward pass once).

    D's update: D forward on real and fake together (2B rows) and its weight gradients; G's
    update: D forward on the fake batch, D backward to its input, then G's backward pass.
    """
    g_dims = [spec.latent_dim, *spec.g_hidden, IMAGE_SIZE]
    d_dims = [IMAGE_SIZE, *spec.d_hidden, 1]
    g_layers = list(zip(g_dims[:-1], g_dims[1:]))
    # A maxout layer of h units is one matmul to h * pieces outputs, then a max over the pieces.
    widen = spec.maxout_pieces if spec.d_activation == "maxout" else 1
    d_layers = [(i, o * widen if n < len(spec.d_hidden) else o)
                for n, (i, o) in enumerate(zip(d_dims[:-1], d_dims[1:]))]
    b, b2 = batch, 2 * batch
    shapes = [(b, i, o) for i, o in g_layers]  # G forward
    shapes += [(b2, i, o) for i, o in d_layers]  # D forward, real + fake
    shapes += [(i, b2, o) for i, o in d_layers]  # D weight gradients
    shapes += [(b2, o, i) for i, o in d_layers[1:]]  # D backward to hidden layers
    shapes += [(b, i, o) for i, o in d_layers]  # updated D forward on the fakes
    shapes += [(b, o, i) for i, o in d_layers]  # updated D backward to the images
    shapes += [(i, b, o) for i, o in g_layers]  # G weight gradients
    shapes += [(b, o, i) for i, o in g_layers[1:]]  # G backward to hidden layers
    return shapes


def step_flops(batch: int, spec: GANSpec = GANSpec()) -> int:
    """Floating-point operations of the matmuls in one step (2 m k n each)."""
    return sum(2 * m * k * n for m, k, n in step_matmul_shapes(batch, spec))


def matmul_ceiling(batch: int, spec: GANSpec = GANSpec(), repeats: int = 5, seconds: float = 0.5) -> float:
    """Best GFLOP/s that numpy's BLAS reaches on one step's matmuls, run back to back."""
    rng = np.random.default_rng(0)
    pairs = [
        (rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32))
        for m, k, n in step_matmul_shapes(batch, spec)
    ]
    flops = step_flops(batch, spec)

    def once() -> None:
        for a, b in pairs:
            a @ b

    once()
    per_call = _time(once, 1)
    calls = max(1, int(seconds / max(per_call, 1e-6)))
    return max(flops * calls / _time(once, calls) / 1e9 for _ in range(repeats))


def _time(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - start


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def loop_runner(images: jax.Array, batch: int, steps: int, spec: GANSpec = GANSpec()) -> Callable[[], float]:
    """A timer for a Python loop over the jitted `train_step` (batches gathered on device).

    Compiles and warms up first; each call of the returned function runs `steps` steps and
    returns their steps/s.
    """
    init_key, key, _ = seed_keys(0)
    holder = {"state": create_state(spec, init_key), "i": 0}
    n = images.shape[0] // batch * batch
    perm = jax.device_put(np.random.default_rng(0).permutation(images.shape[0])[:n].reshape(-1, batch))
    take = jax.jit(lambda images, perm, i: images[perm[i % perm.shape[0]]])

    def timed() -> float:
        state, i = holder["state"], holder["i"]
        start = time.perf_counter()
        for _ in range(steps):
            state, _ = train_step(state, take(images, perm, i), key)
            i += 1
        jax.block_until_ready(state)
        holder["state"], holder["i"] = state, i
        return steps / (time.perf_counter() - start)

    holder["state"], _ = train_step(holder["state"], take(images, perm, 0), key)  # compile
    jax.block_until_ready(holder["state"])
    return timed


def fused_runner(images: jax.Array, batch: int, k: int, spec: GANSpec = GANSpec()) -> Callable[[], float]:
    """A timer for `train_steps` with `k` steps per call, fetching metrics as the training loop does."""
    init_key, key, _ = seed_keys(0)
    holder = {"state": create_state(spec, init_key)}

    def timed() -> float:
        start = time.perf_counter()
        holder["state"], metrics = train_steps(holder["state"], images, key, k, batch)
        jax.device_get(metrics)  # the one host fetch per call
        return k / (time.perf_counter() - start)

    timed()  # compile and warm up
    return timed


def many_runner(images: jax.Array, batch: int, num_seeds: int, k: int, spec: GANSpec = GANSpec()) -> Callable[[], float]:
    """A timer for `train_steps_many`: S GANs under `vmap`, `k` steps per call; returns GAN-steps/s."""
    from flax_gan.step import train_steps_many

    init_keys = jnp.stack([seed_keys(s)[0] for s in range(num_seeds)])
    keys = jnp.stack([seed_keys(s)[1] for s in range(num_seeds)])
    holder = {"states": jax.jit(jax.vmap(lambda key: create_state(spec, key)))(init_keys)}

    def timed() -> float:
        start = time.perf_counter()
        holder["states"], metrics = train_steps_many(holder["states"], images, keys, k, batch)
        jax.device_get(metrics)
        return num_seeds * k / (time.perf_counter() - start)

    timed()  # compile and warm up
    return timed


def paired(runner: Callable[[], float], batch: int, repeats: int, spec: GANSpec = GANSpec()) -> dict[str, Any]:
    """Alternates `runner` with a short ceiling measurement; the share of the ceiling per pair.

    This machine's speed drifts under outside load by tens of percent within minutes, so a
    ceiling measured once would not describe the moment of each project run.
    """
    flops = step_flops(batch, spec)
    rates, ceilings, shares = [], [], []
    for _ in range(repeats):
        rate = runner()
        ceiling = matmul_ceiling(batch, spec, repeats=1, seconds=0.3)
        rates.append(rate)
        ceilings.append(ceiling)
        shares.append(rate * flops / 1e9 / ceiling)
    row = _summary(rates)
    row["gflops"] = row["median"] * flops / 1e9
    row["ceiling_gflops"] = statistics.median(ceilings)
    row["share_of_ceiling"] = statistics.median(shares)
    return row


class SeedTorchLoop:
    """The seed's PyTorch loop (its model, losses and optimizers), on the given uint8 images.

    The seed's code no longer runs on current PyTorch (its G backward goes through D's graph
    after `optimizer_D.step()`): as the smallest change that runs, G's loss re-runs the updated
    D on the same fake batch. `feed` is "per-item" (as torchvision's MNIST does: uint8 -> PIL
    image -> ToTensor, one item at a time, through a DataLoader) or "preloaded" (one float
    tensor, batches sliced from a permutation).
    """

    def __init__(self, images: np.ndarray, batch: int, feed: str = "preloaded", threads: int | None = None):
        import torch
        import torch.nn as nn

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.batch, self.feed = batch, feed
        self.images = torch.from_numpy(np.ascontiguousarray(images.reshape(-1, 28, 28)))
        self.preloaded = self.images.float().div(255).unsqueeze(1)
        self.d = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 1), nn.Sigmoid())
        self.g = nn.Sequential(
            nn.Linear(100, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 784), nn.Sigmoid()
        )
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self._batches = self._batch_iter()

    def _per_item_loader(self):
        from PIL import Image

        torch = self.torch
        images = self.images

        class MNISTLike(torch.utils.data.Dataset):  # torchvision.datasets.MNIST.__getitem__
            def __len__(self):
                return len(images)

            def __getitem__(self, i):
                pic = Image.fromarray(images[i].numpy(), mode="L")
                x = torch.from_numpy(np.array(pic, np.uint8, copy=True)).view(28, 28, 1)
                return x.permute(2, 0, 1).contiguous().float().div(255), 0  # ToTensor

        return torch.utils.data.DataLoader(MNISTLike(), batch_size=self.batch, shuffle=True, drop_last=True)

    def _batch_iter(self):
        torch = self.torch
        while True:
            if self.feed == "per-item":
                for x, _ in self._per_item_loader():
                    yield x
            else:
                perm = torch.randperm(len(self.preloaded))
                for i in range(len(perm) // self.batch):
                    yield self.preloaded[perm[i * self.batch : (i + 1) * self.batch]]

    def step(self) -> None:
        torch = self.torch
        x = next(self._batches)
        z = torch.randn(x.shape[0], 100)
        self.opt_d.zero_grad()
        fake = self.g(z).view(x.shape[0], 1, 28, 28)
        real_out, fake_out = self.d(x.view(x.shape[0], -1)), self.d(fake.view(x.shape[0], -1))
        loss_d = (-torch.log(real_out) - torch.log(1.0 - fake_out)).mean()
        loss_d.backward(retain_graph=True)
        self.opt_d.step()
        self.opt_g.zero_grad()
        loss_g = -torch.log(self.d(fake.view(x.shape[0], -1))).mean()
        loss_g.backward()
        self.opt_g.step()

    def steps_per_sec(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return steps / (time.perf_counter() - start)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def bench_seed_pairs(images: np.ndarray, batch: int, k: int, seed_steps: int, repeats: int,
                     feeds: Sequence[str] = ("preloaded", "per-item")) -> dict[str, Any]:
    """Alternates the project's fused call (k steps) with the seed's loop; paired ratios per feed."""
    device_images = jax.device_put(images)
    init_key, key, _ = seed_keys(0)
    state = create_state(GANSpec(), init_key)
    state, _ = train_steps(state, device_images, key, k, batch)
    jax.block_until_ready(state)
    loops = {feed: SeedTorchLoop(images, batch, feed) for feed in feeds}
    for loop in loops.values():
        loop.steps_per_sec(5)  # warm-up
    project: list[float] = []
    seed: dict[str, list[float]] = {feed: [] for feed in feeds}
    for _ in range(repeats):
        start = time.perf_counter()
        state, metrics = train_steps(state, device_images, key, k, batch)
        jax.device_get(metrics)
        project.append(k / (time.perf_counter() - start))
        for feed, loop in loops.items():
            seed[feed].append(loop.steps_per_sec(seed_steps))
    out: dict[str, Any] = {"project": _summary(project)}
    for feed in feeds:
        ratios = [p / s for p, s in zip(project, seed[feed])]
        out[feed] = {"seed": _summary(seed[feed]), "ratio": _summary(ratios)}
    return out


def bench_presets(images: jax.Array, names: Sequence[str], k: int, repeats: int,
                  log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Fused training speed of each named preset at its own batch size (steps/s, `k` steps per call).

    Steps of different presets differ in cost (the paper's G is 1200-1200 wide, with maxout and
    dropout in D), so "the same wall time" needs these rates, not the step counts.
    """
    from flax_gan.config import Config, preset

    rows = []
    for name in names:
        config = Config().replace(**preset(name)).validate()
        spec = GANSpec.from_config(config)
        timed = fused_runner(images, config.batch_size, k, spec)
        row = {"preset": name, "batch": config.batch_size, "k": k,
               "gflop_per_step": step_flops(config.batch_size, spec) / 1e9,
               **_summary([timed() for _ in range(repeats)])}
        rows.append(row)
        log(f"preset {name:8s} batch {row['batch']}: {row['median']:7.1f} steps/s (min {row['min']:.1f}, "
            f"max {row['max']:.1f}), {row['gflop_per_step']:.2f} GFLOP of matmuls per step")
    return rows


def bench_cli(steps: int, data: str = "bundled") -> dict[str, Any]:
    """Runs scripts/train.py in a subprocess; steady-state steps/s from its metrics.jsonl."""
    import json

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "train.py")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = os.path.join(tmp, "run")
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, script, "--steps", str(steps), "--workdir", workdir, "--data", data, "--no-progress"],
            check=True, capture_output=True, text=True,
        )
        wall = time.perf_counter() - start
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            rates = [json.loads(line)["steps_per_sec"] for line in f][1:]  # the first window compiles
    return {"steps": steps, "wall_s": wall, "steady": _summary(rates)}


def bench_startup(steps: int = 100, data: str = "bundled") -> dict[str, float]:
    """Wall time of `scripts/train.py --steps 100`, with an empty and with a warm compile cache."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "train.py")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.path.join(tmp, "cache"))
        for name in ("cold_cache_s", "warm_cache_s"):
            workdir = os.path.join(tmp, name)
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, script, "--steps", str(steps), "--workdir", workdir, "--data", data, "--no-progress"],
                check=True, capture_output=True, env=env,
            )
            out[name] = time.perf_counter() - start
    return out


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "python": platform.python_version(),
    }


def run(
    batch_sizes: Sequence[int] = (64, 128, 512),
    ks: Sequence[int] = (100, 1000),
    repeats: int = 3,
    loop_steps: int = 100,
    data: str = "synthetic",
    seed_baseline: bool = True,
    seed_steps: int = 100,
    seed_repeats: int = 5,
    cli_steps: int = 2000,
    startup: bool = True,
    num_seeds: Sequence[int] = (1, 4, 16),
    presets: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Runs every measurement; returns them as one JSON-ready dict."""
    from flax_gan.data import load_mnist

    dataset = load_mnist(data)
    images = jax.device_put(dataset.images)
    spec = GANSpec()
    result: dict[str, Any] = {"machine": machine(), "data": dataset.source, "num_images": int(images.shape[0]),
                              "gflop_per_step": {}, "ceiling": {}, "project": []}
    for batch in batch_sizes:
        flops = step_flops(batch, spec)
        ceiling = matmul_ceiling(batch, spec)
        result["gflop_per_step"][str(batch)] = flops / 1e9
        result["ceiling"][str(batch)] = {"gflops": ceiling, "steps_per_sec": ceiling * 1e9 / flops}
        log(f"batch {batch}: {flops / 1e9:.3f} GFLOP/step; matmul ceiling now {ceiling:.0f} GFLOP/s = "
            f"{ceiling * 1e9 / flops:.0f} steps/s")
        runners = [("loop", None, lambda: loop_runner(images, batch, loop_steps, spec))]
        runners += [("fused", k, lambda k=k: fused_runner(images, batch, k, spec)) for k in ks]
        for mode, k, make in runners:
            row = {"mode": mode, "k": k, "batch": batch, **paired(make(), batch, repeats, spec)}
            result["project"].append(row)
            log(f"  {mode:5s} k={k or '-':>5} {row['median']:7.1f} steps/s (min {row['min']:.1f}, max {row['max']:.1f})"
                f"  {row['gflops']:5.1f} GFLOP/s = {100 * row['share_of_ceiling']:.0f}% of the ceiling measured "
                f"beside it ({row['ceiling_gflops']:.0f} GFLOP/s)")
    if num_seeds:
        result["many"] = []
        batch = 128 if 128 in batch_sizes else batch_sizes[0]
        k = min(ks)
        for s in num_seeds:
            timed = many_runner(images, batch, s, k, spec)
            row = {"num_seeds": s, "batch": batch, "k": k, **_summary([timed() for _ in range(repeats)])}
            result["many"].append(row)
            log(f"{s:3d} GANs under vmap, batch {batch}, k={k}: {row['median']:7.1f} GAN-steps/s "
                f"(min {row['min']:.1f}, max {row['max']:.1f})")
    if presets:
        result["presets"] = bench_presets(images, presets, min(ks), repeats, log)
    if seed_baseline and torch_available():
        pairs = bench_seed_pairs(dataset.images, 128, 100, seed_steps, seed_repeats)
        result["seed"] = pairs
        for feed in ("preloaded", "per-item"):
            log(f"seed PyTorch loop, {feed}: {pairs[feed]['seed']['median']:.1f} steps/s; project fused k=100 / seed "
                f"= {pairs[feed]['ratio']['median']:.2f}x (median of {seed_repeats} paired runs)")
    elif seed_baseline:
        log("seed PyTorch loop: skipped (PyTorch is not installed: pip install -e '.[bench]')")
    if cli_steps:
        cli = bench_cli(cli_steps)
        result["cli"] = cli
        log(f"scripts/train.py --data bundled, {cli_steps} steps: steady {cli['steady']['median']:.1f} steps/s, "
            f"{cli['wall_s']:.1f} s wall")
    if startup:
        result["startup"] = bench_startup()
        log(f"scripts/train.py --steps 100 --data bundled: {result['startup']['cold_cache_s']:.1f} s with an empty "
            f"compile cache, {result['startup']['warm_cache_s']:.1f} s with a warm one")
    return result
