"""hotswap's paper harness, a distribution apart from the library (``pip install -e harness``):

- :mod:`hotswap_harness.experiments`: the demo (``hotswap demo``) and the papers' protocols, one registry
  (:mod:`hotswap_harness.experiments.registry`) from which ``hotswap experiment NAME`` and the report are made;
- :mod:`hotswap_harness.report`: every results JSON gathered into one HTML page, a Markdown file and the docs'
  results page;
- :mod:`hotswap_harness.cli`: those verbs, added to the ``hotswap`` command line through its ``hotswap.cli``
  entry point.

The library never imports it; it imports the library.
"""
