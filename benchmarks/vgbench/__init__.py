"""vecgrad's speed and memory benchmark, run as ``python benchmarks/bench.py`` (see ``cli``).

``harness`` holds what every case uses: methods and cases, their check and timing, goals and
the printed tables. ``problems`` holds the functions and torch routes that several families
share. Each family of cases has its module, with its sizes and its goals beside its cases:
``jacobians``, ``batched``, ``per_sample``, ``curvature``, ``estimators``, ``graph_costs``,
``sparse`` and ``memory``.
"""
