"""benchmarks/adapter_overhead.py at a tiny size: every registered adapter gets a row beside the encoder's."""

from __future__ import annotations

import json

import pytest

from hotswap.adapters import available_adapters, get_adapter_class
from tests.benchmarks.helpers import ok, table_rows


def test_adapter_overhead_times_every_adapter_beside_the_encoder(run_bench, tmp_path):
    out = tmp_path / "x.json"
    stdout = ok(run_bench("adapter_overhead.py", "--dim-new", 16, "--dim-old", 8, "--n-fit", 200, "--repeats", 20,
                          "--mlp-epochs", 2, "--encoder", "static", "--out", out))
    result = json.loads(out.read_text())
    rows = {r["adapter"]: r for r in result["rows"]}
    assert sorted(rows) == available_adapters()
    encoder = result["encoder"]
    assert encoder["id"].startswith("static@") and encoder["dim"] == 256
    assert encoder["us_per_query_b1"] > 0 and encoder["us_per_query_b256"] > 0
    for name, r in rows.items():
        assert (r["dim_new"], r["dim_old"]) == (16, 16 if get_adapter_class(name).equal_dims else 8), name
        assert r["fit_s"] >= 0 and r["us_per_query_b1"] > 0 and r["us_per_query_b256"] > 0, name
        assert r["ratio_b256"] == pytest.approx(r["us_per_query_b256"] / encoder["us_per_query_b256"])
        assert r["meets_target"] == (r["us_per_query_b256"] <= result["target_us"])
    table = table_rows(stdout)
    assert set(table) == set(rows) | {f"encoder {encoder['id']}"}
    assert table[f"encoder {encoder['id']}"][0] == "text->256"
    assert {table[name][0] for name in rows} == {"16->16", "16->8"}
