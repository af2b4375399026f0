#!/usr/bin/env python
"""Score a checkpoint: python scripts/evaluate.py --workdir DIR [--num N] [--test-data DIR] [--out FILE.json]."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flax_gan.cli import evaluate_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(evaluate_main())
