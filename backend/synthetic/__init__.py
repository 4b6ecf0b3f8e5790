"""Every generator of synthetic data: only the demo-data command, tests and benchmarks use it.

- :mod:`~backend.synthetic.fields`: smooth random fields.
- :mod:`~backend.synthetic.forcing`: monthly forcing, random parameters and model runoff per
  cell (calibration tests and benchmarks).
- :mod:`~backend.synthetic.twin`: predictors, labels and truth on a grid (the learning half).
- :mod:`~backend.synthetic.demo_region`: the demo region over Europe (``make demo``).
"""
