#!/usr/bin/env python
"""Train the MNIST GAN: python scripts/train.py --steps N [--workdir DIR] ... (see --help)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flax_gan.cli import train_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(train_main())
