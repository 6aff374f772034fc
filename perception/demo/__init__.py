"""``perception demo``: the whole pipeline on generated data, on CPU.

The core orchestrates; each plugin registers its part in
:data:`perception.registry.DEMOS` (the driving plugin ``driving``, the
medical plugin ``medical``). :func:`run_demo` runs the parts asked for,
writes ``report.md``, ``report.html`` and ``figures.json`` into the work dir
and prints a summary.
"""
from perception.demo.context import Artifact, DemoContext, Figure, PartResult
from perception.demo.run import DemoError, available_parts, run_demo

__all__ = ['Artifact', 'DemoContext', 'DemoError', 'Figure', 'PartResult',
           'available_parts', 'run_demo']
