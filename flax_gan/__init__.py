"""flax-gan: the original GAN (Goodfellow et al. 2014) on MNIST in JAX/Flax.

The public API::

    from flax_gan import Config, create_state, train_step, train_steps, load_mnist, sample
"""

from flax_gan.config import Config, ConfigError
from flax_gan.data import DataError, Dataset, load_mnist
from flax_gan.losses import discriminator_loss, generator_loss
from flax_gan.metrics import class_histogram, frechet_distance, min_class_share, mnist_score, parzen_log_likelihood
from flax_gan.models import Discriminator, Generator, Maxout
from flax_gan.sampling import sample
from flax_gan.state import GANSpec, GANState, create_run_state, create_state, seed_keys, select
from flax_gan.step import batch_indices, train_step, train_steps, train_steps_many

__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "Dataset",
    "Discriminator",
    "GANSpec",
    "GANState",
    "Generator",
    "Maxout",
    "batch_indices",
    "class_histogram",
    "create_run_state",
    "create_state",
    "discriminator_loss",
    "frechet_distance",
    "generator_loss",
    "load_mnist",
    "min_class_share",
    "mnist_score",
    "parzen_log_likelihood",
    "sample",
    "seed_keys",
    "select",
    "train_step",
    "train_steps",
    "train_steps_many",
]
__version__ = "0.1.0"
