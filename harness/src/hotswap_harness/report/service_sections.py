"""Report sections for the service's results: ``load.json``, ``faults.json`` and ``upgrade_chain*.json``.

Its builders are :data:`SERVICE_BUILDERS`; ``build.py`` adds them to the report's.
"""

from __future__ import annotations

from hotswap_harness.report.sections import Builder, Section, Source, Table, f3, num


def load_section(data: dict, src: Source) -> Section:
    """``load.json`` (``benchmarks/load.py``): latency percentiles per backend, clients and upgrade state."""
    rows = [[r["backend"], str(r["clients"]), r.get("state", "running" if r["backfill_running"] else "idle"),
             r.get("mode", ""), str(r["requests"]), str(r["errors"]), num(r["p50_ms"], 0), num(r["p95_ms"], 0),
             num(r["p99_ms"], 0), num(r.get("qps"), 0)] for r in data["rows"]]
    ratios = ", ".join(f"{k} {v:.1f}×" for k, v in data.get("p99_ratio_backfill_vs_idle", {}).items())
    paused = ", ".join(f"{k} {v:.1f}×" for k, v in data.get("p99_ratio_backfill_vs_paused", {}).items())
    notes = [f"target: {data.get('target')}; met: {data.get('met')}",
             f"p99 backfill / idle: {ratios}" if ratios else None,
             f"p99 backfill / paused upgrade (same work per query): {paused}" if paused else None,
             f"{data['hardware']}, {data['wall_s']:.0f} s" if "hardware" in data and "wall_s" in data else None]
    return Section(src.key, "Load test of hotswap serve", "python benchmarks/load.py",
                   [Table(["backend", "clients", "state", "mode", "requests", "errors", "p50 ms", "p95 ms",
                           "p99 ms", "q/s"], rows)], [n for n in notes if n], src.image, src.path)


def faults_section(data: dict, src: Source) -> Section:
    """``faults.json`` (``benchmarks/faults.py``): SIGKILLs of the server during a live upgrade."""
    keys = ["kills", "recovered", "items_lost", "items_duplicated", "bad_requests", "responses_5xx",
            "checksum_equal"]
    cfg = data.get("config", {})
    notes = [f"stored at each kill: {data.get('stored_at_kill')} of {data.get('total')}",
             f"{cfg.get('old')} → {cfg.get('new')}, {cfg.get('n')} documents, batch {cfg.get('batch_size')}, "
             f"backend {data.get('backend', 'faiss')}"]
    return Section(src.key, "Fault injection: SIGKILL during an upgrade", "python benchmarks/faults.py",
                   [Table(keys, [[str(data.get(k)) for k in keys]])], notes, src.image, src.path)


def upgrade_chain_section(data: dict, src: Source) -> Section:
    """``upgrade_chain*.json`` (``benchmarks/upgrade_chain.py``): composed vs direct adapters vs re-index."""
    rows = [[r["method"], r.get("path", ""), f3(r["ndcg@10"]), f3(r["recall@10"]),
             "–" if r.get("us_per_query") is None else num(r["us_per_query"], 1)] for r in data["rows"]]
    kind = data.get("kind", "")
    return Section(src.key, f"Upgrade chain v1 → v2 → v3 served from the v1 index ({kind})",
                   f"python benchmarks/upgrade_chain.py --kind {kind}",
                   [Table(["method", "path", "nDCG@10", "recall@10", "µs/query (batch 1)"], rows)],
                   [f"{data.get('dataset')}; models {data.get('models')}"], src.image, src.path)


SERVICE_BUILDERS: dict[str, Builder] = {"load": load_section, "faults": faults_section,
                                        "upgrade_chain": upgrade_chain_section,
                                        "upgrade_chain_affine": upgrade_chain_section}
