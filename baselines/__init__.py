"""The original code this project started from, reimplemented from its description, for :mod:`benchmarks`.

:mod:`baselines.model` is the original TabTransformer and its training step (``benchmarks.training``,
``benchmarks.loop``); :mod:`baselines.storage` is the original one-document-per-row storage of a day's data
(``benchmarks.storage``, ``benchmarks.loop``). Neither is the original code itself.
"""
