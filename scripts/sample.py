#!/usr/bin/env python
"""Sample from a trained GAN: python scripts/sample.py --workdir DIR --num N --seed S --out FILE.npy."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flax_gan.cli import sample_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(sample_main())
