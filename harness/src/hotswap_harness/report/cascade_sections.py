"""Report sections for cascade search: ``cascade.json`` (``hotswap demo``, streams from the benchmark) and
``cascade_cost.json`` (``benchmarks/cascade_cost.py``).

Its builders are :data:`CASCADE_BUILDERS`; ``build.py`` adds them to the report's.
"""

from __future__ import annotations

from hotswap_harness.report.sections import Builder, Section, Source, Table, f3, num


def _budget(b: int | None) -> str:
    return "unlimited" if b is None else str(b)


def _stream_table(streams: list[dict]) -> Table:
    rows = [[s.get("mode", "cascade"), _budget(s.get("budget")), str(p["queries"]), f3(p["ndcg@10"]),
             num(p["encodes_per_query"], 2), num(p["p50_ms"], 1), num(p["p99_ms"], 1)]
            for s in streams for p in s["points"]]
    return Table(["mode", "budget", "queries served", "nDCG@10", "encodes / query", "p50 ms", "p99 ms"], rows,
                 "a Zipf-like stream of test queries served one at a time, 0 % backfilled (cumulative)")


def cascade_section(data: dict, src: Source) -> Section:
    """Day-0 rows, the curves across the backfill, and (when the benchmark ran) the streams."""
    old, new = data["old_ndcg@10"], data["new_ndcg@10"]
    rows = [[r["candidate_query"], str(r["candidates"]), _budget(r["encode_budget"]), f3(r["ndcg@10"]),
             f3(r["recall@10"]), f3(r["recovered_ndcg@10"]), f3(r["negative_flip_rate"]),
             num(r["encodes_per_query"], 1)] for r in data["rows"]]
    tables = [Table(["candidate query", "G", "budget", "nDCG@10", "R@10", "recovered", "NFR", "encodes / query"],
                    rows, f"0 % backfilled; old/old {f3(old)}, new/new {f3(new)}")]
    curves = [[c["policy"], c.get("label", c["mode"]), *(f3(p["ndcg@10"]) for p in c["points"]),
               f3(c["auc_ndcg@10"])] for c in data.get("curves", [])]
    if curves:
        fractions = [f"{p['fraction']:.0%}" for p in data["curves"][0]["points"]]
        tables.append(Table(["policy", "mode", *fractions, "AUC"], curves, "nDCG@10 across the online backfill"))
    if data.get("streams"):
        tables.append(_stream_table(data["streams"] + data.get("stream_baselines", [])))
    notes = [f"{data['dataset']}: {data['n_docs']} docs, {data['n_test_queries']} test queries; "
             f"{data['old_model']} → {data['new_model']}"]
    return Section(src.key, "Cascade search: old-index candidates re-scored by the new model",
                   "hotswap demo\npython benchmarks/cascade_cost.py", tables, notes, src.image, src.path)


def cascade_cost_section(data: dict, src: Source) -> Section:
    """The stream benchmark and the 100 %-backfilled cost ratio."""
    f = data["full_backfill"]
    ratio = Table(["measure", "cascade ms", "new index ms", "ratio"],
                  [[k.replace("_", " "), num(f[k]["cascade"], 2), num(f[k]["new"], 2), num(f[k]["ratio"], 2)]
                   for k in ("search_ms", "end_to_end_ms")],
                  f"100 % backfilled, {f['n_docs']} docs, batch 1 (target ≤ {f['target_ratio']})")
    notes = [f"{data['n_docs']} docs; {data['queries']} queries ({data['distinct_queries']} distinct), "
             f"blend weight {data['blend_weight']}"]
    return Section(src.key, "Cascade cost on a live query stream", "python benchmarks/cascade_cost.py",
                   [_stream_table(data["streams"]), ratio], notes, src.image, src.path)


CASCADE_BUILDERS: dict[str, Builder] = {"cascade": cascade_section, "cascade_cost": cascade_cost_section}
