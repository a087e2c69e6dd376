"""Design-space sweeps (``lnsim sweep``): train or measure every point of a grid of specs, resumably, in parallel.

* :mod:`lnsim.sweep.grid` -- the grid: axes from the command line or a TOML/JSON file, one validated spec per point;
* :mod:`lnsim.sweep.tasks` -- one task per (point, seed), its key and the function a worker runs;
* :mod:`lnsim.sweep.store` -- finished tasks as one JSON file each, written atomically;
* :mod:`lnsim.sweep.runner` -- runs the unfinished tasks through joblib with one progress bar;
* :mod:`lnsim.sweep.outputs` and :mod:`lnsim.sweep.plots` -- ``results.csv``/``.json``, ``summary.md``, PNGs.

The ``lnsim sweep`` subcommand is :mod:`lnsim.cli.sweep`.
"""
