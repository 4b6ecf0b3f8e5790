"""Monthly water balance models, goodness of fit and per-cell calibration (CWSC labels).

One module a concern (nothing is imported here, so each import pulls only what it needs):

- :mod:`~backend.hydro.options`: the model, formulation and objective names (standard library).
- :mod:`~backend.hydro.models`: DWBM, SWBM, TVGM in torch (``simulate``, ``run_months``).
- :mod:`~backend.hydro.metrics`: KGE, NSE and the calibration target.
- :mod:`~backend.hydro.sceua`: SCE-UA for many problems in lockstep.
- :mod:`~backend.hydro.config`: :class:`~backend.hydro.config.CalibrationConfig`, defaults.
- :mod:`~backend.hydro.engine`: what runs the objective (C, Triton, torch), chosen once a run.
- :mod:`~backend.hydro.cpu_kernels` (+ ``cpu_kernels.c``), :mod:`~backend.hydro.cuda_kernels`
  (+ ``cuda_kernels_triton.py``), :mod:`~backend.hydro.fusion`: the objective's engines.
- :mod:`~backend.hydro.calibrate`: ``calibrate_batch``, ``calibrate_model``, ``calibrate``.
- :mod:`~backend.hydro.parallel`: shards, worker processes, seeds; the batching words.
- :mod:`~backend.hydro.labels`: per-model labels, the joint label rule, band descriptions,
  the KGE mask.
- :mod:`~backend.hydro.forcing`: reading and checking P, PET and runoff rasters.
"""
