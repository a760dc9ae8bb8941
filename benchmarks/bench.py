"""Speed and memory of vecgrad against the plain PyTorch ways of computing the same derivatives.

``python benchmarks/bench.py [--quick] [--json PATH]``: see benchmarks/README.md. The cases and
the harness are the package ``vgbench`` beside this script, which Python finds because it puts
the script's folder first on the module search path.
"""

import sys

from vgbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
