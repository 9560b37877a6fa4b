"""The daily loop: one module per DAG (:mod:`.data`, :mod:`.evaluation`, :mod:`.deployment`) plus :mod:`.bootstrap`.

Each task function loads through :mod:`daily_mlops.storage`, runs a pure step
from :mod:`daily_mlops.ml` or :mod:`daily_mlops.decisions`, and saves through
:mod:`daily_mlops.storage`, keyed by the logical date and model version.
"""
