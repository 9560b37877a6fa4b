"""One-off measurements and reports, and the data makers (``generate_env.py``, ``make_wide_table.py``).

Each is run as a file, ``PYTHONPATH=src python scripts/NAME.py --help``; :mod:`benchmarks` imports
``scripts.bootstrap_quality`` and ``scripts.make_wide_table`` as modules.
"""
