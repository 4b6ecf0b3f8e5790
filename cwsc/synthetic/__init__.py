"""Every generator of synthetic data: only the demo-data command, tests and benchmarks use it.

- :mod:`~cwsc.synthetic.fields`: smooth random fields.
- :mod:`~cwsc.synthetic.forcing`: monthly forcing, random parameters and model runoff per
  cell (calibration tests and benchmarks).
- :mod:`~cwsc.synthetic.twin`: predictors, labels and truth on a grid (the learning half).
- :mod:`~cwsc.synthetic.demo_region`: the demo region over Europe (``make demo``).
"""
