"""What ``make bench`` runs: speed and memory figures of the loop on this machine, each next to its goal.

Run from the repository root as ``python -m benchmarks [SECTION]`` (the sections are listed in
:mod:`benchmarks.__main__`). One module per section that has its own file: :mod:`benchmarks.storage`,
:mod:`benchmarks.training` (``training`` and ``wide``), :mod:`benchmarks.loop`, :mod:`benchmarks.promotion`,
:mod:`benchmarks.tasks` (with :mod:`benchmarks.task_probe`, the task process it starts); ``parse``, ``steps``
and ``gate`` live in the dispatcher. The original code they compare against is in :mod:`baselines`.
"""
