"""Monthly water balance models, goodness of fit and per-cell calibration (CWSC labels).

One module a concern (nothing is imported here, so each import pulls only what it needs):

- :mod:`~cwsc.hydro.options`: the model, formulation and objective names (standard library).
- :mod:`~cwsc.hydro.models`: DWBM, SWBM, TVGM in torch (``simulate``, ``run_months``).
- :mod:`~cwsc.hydro.metrics`: KGE, NSE and the calibration target.
- :mod:`~cwsc.hydro.sceua`: SCE-UA for many problems in lockstep.
- :mod:`~cwsc.hydro.calibration.config`: :class:`~cwsc.hydro.calibration.config.CalibrationConfig`, defaults.
- :mod:`~cwsc.hydro.engines.selection`: what runs the objective (C, Triton, torch), chosen once a run.
- :mod:`~cwsc.hydro.engines.cpu` (+ ``cpu_kernels.c``), :mod:`~cwsc.hydro.engines.cuda`
  (+ ``cuda_kernels_triton.py``), :mod:`~cwsc.hydro.engines.fusion`: the objective's engines.
- :mod:`~cwsc.hydro.calibration.shard`: ``calibrate_batch``, ``calibrate_model``, ``calibrate_in_process``; :mod:`~cwsc.hydro.calibration.driver`: ``calibrate``.
- :mod:`~cwsc.hydro.calibration.shards`: shards, worker processes, seeds; the batching words.
- :mod:`~cwsc.hydro.labels`: per-model labels, the joint label rule, band descriptions,
  the KGE mask.
- :mod:`~cwsc.io.forcing`: reading and checking P, PET and runoff rasters.
"""
