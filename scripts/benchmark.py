#!/usr/bin/env python
"""Measure training speed against the matmul ceiling and the seed's PyTorch loop (see --help)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flax_gan.cli import benchmark_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(benchmark_main())
