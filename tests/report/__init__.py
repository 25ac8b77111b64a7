"""Tests of hotswap.report (the results report)."""
