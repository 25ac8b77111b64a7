"""Tests of hotswap_harness.report (the results report)."""
