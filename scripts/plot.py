#!/usr/bin/env python
"""Plot training curves: python scripts/plot.py --workdir DIR [--out FILE.png]."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flax_gan.cli import plot_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(plot_main())
