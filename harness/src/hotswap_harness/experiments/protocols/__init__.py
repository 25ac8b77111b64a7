"""The paper protocols, one module each: the ``SPEC`` that :mod:`hotswap_harness.experiments.registry` lists (options,
table, plot, report sections, the paper's numbers); the heavy code each one runs lives beside it in
:mod:`hotswap_harness.experiments`. Importing a protocol module loads no torch."""
