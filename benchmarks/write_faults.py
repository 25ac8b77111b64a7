"""SIGKILL the search server during write bursts, before, during and after an upgrade; check every acknowledged write.

    python benchmarks/write_faults.py [--backends faiss,qdrant,milvus,pg --kills 20 --n-docs 1000 --seed 0]

Sends bounded write bursts (upserts and deletes) while the server is SIGKILLed at random moments before, during
and after an upgrade, restarts it, and checks every acknowledged write (latest text served, deletes gone,
nothing duplicated) before and after commit.

Per backend: a fresh collection of ``--n-docs`` bundled Debian documents, model ``static`` (``hotswap serve
--store BACKEND://PATH --model static --dataset debian --max-docs N``, admin key in ``HOTSWAP_API_KEY``; a
restart serves the collection's own texts: ``hotswap serve --store BACKEND://PATH``), served by a child process
on 127.0.0.1. A writer thread sends bursts of up to ``--burst`` requests, one at a time:
upserts of 1-16 documents (ids that exist, ids deleted earlier, brand-new ids; each text a real Debian
description of a package outside the collection, or its words shuffled, tagged with a unique revision) and
deletes of 1-8 ids (existing, previously written, already deleted, never existing), all from a seeded RNG.

Ledger: for each id the set of states it may be in. An acknowledged write (HTTP 200) makes its state certain (that
text, or deleted); a write without a reply (the server died mid-request) adds its state as possible, so the id is
*uncertain* until a later acknowledged write settles it, or until a check after the restart reads which of the
possible states it is in (the docstore is durable: that state is then certain).

Kills: after a seeded delay (uniform in [0.05, ``--max-delay``] s from the start of a burst) the server's process
group gets SIGKILL, then it is started again on the collection as it is; it must recover by itself (journal
replay, upgrade resume) and answer ``/healthz``. ``--kills`` are spread over three phases: ``before`` (idle,
static), ``during`` (after ``POST /upgrade`` to ``--new``, minilm by default, with batch size ``--upgrade-batch``:
the backfill runs across the kills; then writes go on until it completes and ``POST /upgrade/commit`` is sent while
a burst is in flight) and ``after`` (idle, the new model). ``--allow-model NAME=FOLDER`` offers a model
folder as ``--new NAME`` (``hotswap serve --allow-model``). ``/status`` is read just before each kill
(``kills_while_backfilling``).

Checks, through HTTP, after every restart (ids written in this phase, every id a write without a reply named,
150 other written ids, 32 never-written ones) and at the end of each phase (every id ever known; before and after
the commit): ``GET /documents/{id}`` must give the certain state exactly (or one of the possible ones): another
text -> ``stale_texts``, 404 for an acknowledged upsert -> ``lost``, the text of an acknowledged delete ->
``resurrected_deletes``. ``POST /search`` (k = 10) with the first 300 characters of the last text of the ids just
written, and of every deleted id at phase ends (samples after a restart): a deleted id in any result list ->
``resurrected_deletes``, an id twice in one list -> ``duplicated``, an id never written -> ``phantom_ids``.
Deep checks with the server stopped (SIGTERM) at the end of ``before``, during the upgrade (before commit) and at
the end: the collection files opened in this process (``Collection``, ``DocStore``, ``open_index`` /
``open_upgrade``): docstore texts == ledger for every id, index ids == docstore ids (a live id missing ->
``lost``, a deleted one present -> ``resurrected_deletes``), no id stored twice (id list, live count, raw database
rows) -> ``duplicated``, and vectors: those of ids written since the last deep check or ever uncertain, plus
``--vector-sample`` others, must have cosine >= 0.999 with their model's encoding of the docstore text ->
``stale_texts``; during the upgrade the new partition's ids must be a subset of the old index's and its vectors
the new model's encoding. Each counter counts distinct ids (a defect seen by several checks counts once);
``failures`` lists the first 50 with where they were seen. HTTP 5xx replies -> ``responses_5xx``; write requests
cut by a kill -> ``interrupted_requests``.

Writes ``results/writes.json`` atomically: ``{"runs": [{"backend", "kills", "recovered", "acknowledged_writes",
"lost", "duplicated", "resurrected_deletes", "stale_texts", "responses_5xx", "wall_s", ...}], "target", "machine"}``.
Target per backend: >= 20 kills (``--min-kills``), every one recovered, 0 lost, 0 duplicated, 0 resurrected,
0 stale, 0 5xx. Exits non-zero if a run misses it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import kept_rows, scheme  # noqa: E402
from faults import free_port  # noqa: E402
PHASES = ("before", "during", "after")
COUNTERS = ("lost", "duplicated", "resurrected_deletes", "stale_texts", "phantom_ids")
MIN_KILLS = 20
API_KEY = "write-faults-admin-key"
COSINE_MIN = 0.999
QUERY_CHARS = 300  # a search check queries with the first characters of the document's text (encoding costs)
DELETED = None  # a ledger state: the id holds no document


class IdSet:
    """A set with O(1) add, remove and seeded random choice (insertion order: runs are reproducible)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.pos: dict[str, int] = {}

    def add(self, x: str) -> None:
        if x not in self.pos:
            self.pos[x] = len(self.items)
            self.items.append(x)

    def discard(self, x: str) -> None:
        if (p := self.pos.pop(x, None)) is not None:
            last = self.items.pop()
            if p < len(self.items):
                self.items[p], self.pos[last] = last, p

    def choice(self, rng: random.Random) -> str | None:
        return self.items[rng.randrange(len(self.items))] if self.items else None

    def __len__(self) -> int:
        return len(self.items)


class Ledger:
    """For every id the states it may be in (a text, or ``DELETED``); one state: certain."""

    def __init__(self, corpus: dict[str, str]) -> None:
        self.states: dict[str, list[str | None]] = {i: [t] for i, t in corpus.items()}
        self.last_text = dict(corpus)  # the last text sent for each id (what a search check queries with)
        self.original = set(corpus)
        self.written: set[str] = set()  # ids any write (acknowledged or not) touched
        self.written_ids = IdSet()  # the same, in order (for picking ids)
        self.delete_sent: set[str] = set()  # ids any delete (acknowledged or not) named
        self.ever_uncertain: set[str] = set()  # ids a write without a reply named
        self.seq, self.last_write = 0, {}  # write counter; id -> the counter at its last write
        self.live, self.deleted = IdSet(), IdSet()  # by each id's latest intended state (for picking ids)
        for i in corpus:
            self.live.add(i)
        self.acknowledged = self.acknowledged_requests = self.uncertain_ops = self.resolved = 0

    def _intend(self, i: str, state: str | None) -> None:
        self.written.add(i)
        self.written_ids.add(i)
        self.seq += 1
        self.last_write[i] = self.seq
        if state is DELETED:
            self.delete_sent.add(i)
            self.live.discard(i)
            self.deleted.add(i)
        else:
            self.deleted.discard(i)
            self.live.add(i)
            self.last_text[i] = state

    def acknowledged_op(self, ops: list[tuple[str, str | None]]) -> None:
        self.acknowledged_requests += 1
        for i, state in ops:
            self.states[i] = [state]
            self.acknowledged += 1
            self._intend(i, state)

    def unacknowledged_op(self, ops: list[tuple[str, str | None]]) -> None:
        for i, state in ops:
            possible = self.states.setdefault(i, [DELETED])  # a new id: absent unless the write went through
            if state not in possible:
                possible.append(state)
            self.uncertain_ops += 1
            self.ever_uncertain.add(i)
            self._intend(i, state)

    def certain(self, i: str) -> bool:
        return len(self.states[i]) == 1

    def settle(self, i: str, observed: str | None) -> None:
        """A check read ``observed`` (one of the possible states) from the durable docstore: it is the state."""
        if len(self.states[i]) > 1:
            self.states[i] = [observed]
            self.resolved += 1

    def ever_deleted(self, i: str) -> bool:
        return i in self.delete_sent

    def focus(self, since: int, rng: random.Random, n_written: int, n_original: int,
              among: set[str] | None = None) -> list[str]:
        """Ids to check in depth: written after write ``since``, ever uncertain, and samples of the other written
        ids and of the originals never written (all of them within ``among``, if given)."""
        keep = (lambda i: True) if among is None else among.__contains__
        recent = sorted(i for i in self.written if self.last_write[i] > since or i in self.ever_uncertain)
        recent = [i for i in recent if keep(i)]
        older = sorted(i for i in self.written if keep(i)
                       and not (self.last_write[i] > since or i in self.ever_uncertain))
        untouched = sorted(i for i in self.original - self.written if keep(i))
        return recent + rng.sample(older, min(n_written, len(older))) + \
            rng.sample(untouched, min(n_original, len(untouched)))


class Tally:
    """Distinct ids per defect kind, plus the first failures in detail."""

    def __init__(self) -> None:
        self.ids: dict[str, set[str]] = {k: set() for k in COUNTERS}
        self.failures: list[dict] = []

    def add(self, kind: str, id: str, where: str, **detail) -> None:
        if id in self.ids[kind]:
            return
        self.ids[kind].add(id)
        if len(self.failures) < 50:
            self.failures.append({"kind": kind, "id": id, "where": where,
                                  **{k: (v[:160] if isinstance(v, str) else v) for k, v in detail.items()}})
        print(f"  FAILURE {kind}: {id!r} at {where} {detail if len(str(detail)) < 400 else ''}", flush=True)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.ids.items()}


def target(min_kills: int) -> str:
    return (f"per backend: >= {min_kills} kills, recovered == kills, 0 lost, 0 duplicated, 0 resurrected_deletes, "
            "0 stale_texts, 0 responses_5xx")


class Server:
    """``hotswap serve`` in its own process group: the first start creates the collection from the dataset, every
    later one serves it as it is (its own texts, which the writes change)."""

    def __init__(self, backend: str, path: Path, n_docs: int, port: int, log: Path,
                 allow_model: list[str] = ()) -> None:
        exe = Path(sys.executable).parent / "hotswap"
        prefix = [str(exe)] if exe.exists() else [sys.executable, "-c", "from hotswap.cli import app; app()"]
        self.path = path
        self.cmd = [*prefix, "serve", "--store", f"{scheme(backend)}://{path}", "--port", str(port),
                    *(f"--allow-model={spec}" for spec in allow_model)]
        self.create = ["--model", "static", "--dataset", "debian", "--max-docs", str(n_docs)]
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "HOTSWAP_API_KEY": API_KEY}
        self.url, self.log, self.proc = f"http://127.0.0.1:{port}", log, None
        self.s5xx = self.interrupted = 0
        self._count = threading.Lock()

    def start(self, timeout: float = 600.0) -> float:
        # serving with --dataset would serve the dataset's texts, and a server that does refuses writes
        cmd = self.cmd if (self.path / "serving.json").exists() else [*self.cmd, *self.create]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server did not answer /healthz in {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the server's process group (the server and anything it started)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 180.0) -> bool:
        """SIGTERM (graceful: the backfill pauses after its batch); SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, headers={"Authorization": f"Bearer {API_KEY}"})

    def counted(self, r: httpx.Response) -> httpx.Response:
        with self._count:
            self.s5xx += r.status_code >= 500
        if r.status_code >= 500:
            print(f"  5xx: {r.request.method} {r.request.url.path} -> {r.status_code} {r.text[:300]}", flush=True)
        return r

    def request(self, client: httpx.Client, method: str, path: str, **kw) -> httpx.Response:
        """A check's request (idempotent): retried on a transport error while the server lives."""
        for attempt in range(3):
            try:
                return self.counted(client.request(method, path, **kw))
            except httpx.TransportError:
                if attempt == 2 or (self.proc is not None and self.proc.poll() is not None):
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")


class Writer(threading.Thread):
    """One burst: up to ``n`` write requests, one at a time; stops at the first request without a reply."""

    def __init__(self, server: Server, ledger: Ledger, rng: random.Random, texts: list[str], n: int,
                 new_prefix: str, counter: list[int]) -> None:
        super().__init__(daemon=True)
        self.server, self.ledger, self.rng, self.texts, self.n = server, ledger, rng, texts, n
        self.new_prefix, self.counter = new_prefix, counter  # counter[0]: revision tag, counter[1]: new ids
        self.in_flight = False
        self.sent = self.errors = 0
        self.stop_at: float | None = None

    def text(self) -> str:
        self.counter[0] += 1
        base = self.rng.choice(self.texts)[:3000]
        if self.rng.random() < 0.3:  # the words of a real description, shuffled
            words = base.split()
            self.rng.shuffle(words)
            base = " ".join(words[:80])
        return f"{base} (revision {self.counter[0]})"

    def new_id(self) -> str:
        self.counter[1] += 1
        return f"{self.new_prefix}-{self.counter[1]:06d}"

    def upsert_ops(self) -> list[tuple[str, str]]:
        ops: dict[str, str] = {}
        for _ in range(self.rng.randint(1, 16)):
            r = self.rng.random()
            i = (self.ledger.live.choice(self.rng) if r < 0.55 else
                 self.ledger.deleted.choice(self.rng) if r < 0.7 else None) or self.new_id()
            ops[i] = self.text()
        return list(ops.items())

    def delete_ops(self) -> list[tuple[str, None]]:
        ids: list[str] = []
        for _ in range(self.rng.randint(1, 8)):
            r = self.rng.random()
            if r < 0.6:
                i = self.ledger.live.choice(self.rng)
            elif r < 0.75:
                i = self.ledger.written_ids.choice(self.rng)  # written before: live, deleted or uncertain
            elif r < 0.85:
                i = self.ledger.deleted.choice(self.rng)
            else:
                self.counter[1] += 1
                i = f"ghost-{self.counter[1]:06d}"  # never written
            if i is not None and i not in ids:
                ids.append(i)
        return [(i, DELETED) for i in ids or [f"ghost-{self.counter[1]:06d}"]]

    def run(self) -> None:
        with self.server.client() as client:
            for _ in range(self.n):
                upsert = self.rng.random() < 0.6
                ops = self.upsert_ops() if upsert else self.delete_ops()
                self.in_flight = True
                try:
                    if upsert:
                        r = client.post("/documents", json={"documents": [{"id": i, "text": t} for i, t in ops]})
                    else:
                        r = client.request("DELETE", "/documents", json={"ids": [i for i, _ in ops]})
                except httpx.TransportError:
                    self.ledger.unacknowledged_op(ops)
                    self.errors += 1
                    with self.server._count:
                        self.server.interrupted += 1
                    return
                finally:
                    self.in_flight = False
                    self.sent += 1
                self.server.counted(r)
                if r.status_code == 200:
                    self.ledger.acknowledged_op(ops)
                else:  # refused or failed: whatever it did is not acknowledged
                    self.ledger.unacknowledged_op(ops)
                    self.errors += 1
                    print(f"  write refused: {r.status_code} {r.text[:300]}", flush=True)
                    return


class Run:
    """One backend: collection, server, phases, kills, checks."""

    def __init__(self, args, backend: str, corpus: dict[str, str], pool: list[str], work: Path) -> None:
        from hotswap.encoders.named import NamedLoader

        self.args, self.backend, self.pool, self.work = args, backend, pool, work
        self.path = work / f"col-{backend}"
        self.server = Server(backend, self.path, args.n_docs, args.port or free_port(), work / f"{backend}.log",
                             args.allow_model)
        self.loader = NamedLoader(dict(spec.split("=", 1) for spec in args.allow_model))
        self.model_ids: dict[str, str] = {}  # "old", "new": what /status names the served model before / after
        self.ledger, self.tally = Ledger(corpus), Tally()
        self.rng = random.Random(f"{args.seed}:{backend}:writes")
        self.kill_rng = random.Random(f"{args.seed}:{backend}:kills")
        self.counter = [0, 0]
        self.kills: dict[str, int] = {p: 0 for p in PHASES}
        self.kills_while_backfilling = self.kills_mid_request = self.recovered = 0
        self.restart_s: list[float] = []
        self.state_at_kill: list[str] = []
        self.checks = self.deep_checks = self.search_misses = self.search_queries = 0
        self.deep: list[dict] = []
        self.upgrade_committed = False
        self.phase = "before"
        self.phase_start = self.last_deep = 0  # the ledger's write counter when the phase / last deep check began

    # ---- writes and kills ---------------------------------------------------------------------------------
    def burst(self, n: int) -> Writer:
        w = Writer(self.server, self.ledger, self.rng, self.pool, n, f"new-{self.backend}", self.counter)
        w.start()
        return w

    def status(self, client: httpx.Client) -> dict:
        r = self.server.request(client, "GET", "/status")
        r.raise_for_status()
        return r.json()

    def kill_cycle(self, k: int) -> None:
        """A burst, SIGKILL after a random delay, restart, check."""
        seq_before = self.ledger.seq
        delay = self.kill_rng.uniform(0.05, self.args.max_delay)
        writer = self.burst(self.args.burst)
        t0 = time.monotonic()
        state = "not read"
        if self.phase == "during":  # read the state in the instant before the kill
            time.sleep(max(0.0, delay - 0.05))
            with self.server.client() as c:
                try:
                    state = self.status(c)["state"]
                except httpx.HTTPError:
                    state = "?"
        time.sleep(max(0.0, t0 + delay - time.monotonic()))
        mid = writer.in_flight
        self.server.kill()
        writer.join(120)
        self.kills[self.phase] += 1
        self.kills_mid_request += mid
        self.kills_while_backfilling += state == "backfilling"
        self.state_at_kill.append(state)
        try:
            restart = self.server.start()
        except (RuntimeError, TimeoutError) as e:
            print(f"kill {k}: server did not recover: {e}", flush=True)
            raise
        self.restart_s.append(restart)
        with self.server.client() as c:
            s = self.status(c)
        ok = s["state"] in (("backfilling", "complete") if self.phase == "during" else ("idle",))
        ok &= s["model_id"] == self.model_ids["new" if self.phase == "after" else "old"]
        self.recovered += ok
        fresh = {i for i, n in self.ledger.last_write.items() if n > seq_before}
        print(f"kill {k:2d} [{self.phase}] after {delay:.2f} s ({writer.sent} requests sent, "
              f"{'mid-request' if mid else 'between requests'}, state {state}): restarted in {restart:.1f} s, "
              f"state {s['state']}{' ' + format(s['upgrade']['fraction'], '.0%') if s.get('upgrade') else ''}"
              f"{'' if ok else ' NOT RECOVERED'}", flush=True)
        self.http_check(f"kill {k} ({self.phase})", full=False, recent=fresh)

    # ---- HTTP checks ----------------------------------------------------------------------------------------
    def http_check(self, where: str, full: bool, recent: set[str] = frozenset()) -> None:
        self.checks += 1
        t0 = time.monotonic()
        L, rng = self.ledger, random.Random(f"{self.args.seed}:{where}")
        ids = sorted(L.states) if full else L.focus(self.phase_start, rng, 150, 32)
        with self.server.client() as c:
            for i in ids:
                r = self.server.request(c, "GET", f"/documents/{quote(i, safe='')}")
                if r.status_code == 200:
                    observed = r.json()["text"]
                elif r.status_code == 404:
                    observed = DELETED
                else:
                    continue  # a 5xx is counted; nothing to compare
                self.compare(i, observed, where + ": GET")
            t1 = time.monotonic()
            n = self.search_queries
            self.search_check(c, where, full, recent, rng)
        print(f"  http check {where}: {len(ids)} GETs in {t1 - t0:.1f} s, {self.search_queries - n} searches in "
              f"{time.monotonic() - t1:.1f} s", flush=True)

    def compare(self, i: str, observed: str | None, where: str) -> bool:
        """``observed`` (docstore / HTTP state of ``i``) against the ledger; settles an uncertain id."""
        possible = self.ledger.states.get(i, [DELETED])
        if observed in possible:
            if i in self.ledger.states:
                self.ledger.settle(i, observed)
            return True
        texts = [s for s in possible if s is not DELETED]
        expected = possible[0] if len(possible) == 1 else f"one of {len(possible)} states"
        if observed is DELETED:
            self.tally.add("lost", i, where, expected=expected)
        elif not texts:
            self.tally.add("resurrected_deletes", i, where, got=observed)
        else:
            self.tally.add("stale_texts", i, where, got=observed, expected=expected)
        return False

    def search_check(self, c: httpx.Client, where: str, full: bool, recent: set[str], rng: random.Random) -> None:
        L = self.ledger
        deleted = sorted(i for i in L.written if L.states[i] == [DELETED] and i in L.last_text)
        written = sorted(i for i in L.written if i in L.last_text and i not in deleted)
        if full:
            ids = deleted + rng.sample(written, min(self.args.search_sample, len(written)))
        else:
            ids = sorted(i for i in recent if i in L.last_text)
            ids += rng.sample(deleted, min(16, len(deleted))) + rng.sample(written, min(8, len(written)))
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), 32):
            chunk = ids[start:start + 32]
            queries = [L.last_text[i][:QUERY_CHARS] for i in chunk]
            r = self.server.request(c, "POST", "/search", json={"queries": queries, "k": 10})
            if r.status_code != 200:
                print(f"  search refused: {r.status_code} {r.text[:200]}", flush=True)
                continue
            for qid, row in zip(chunk, r.json()["results"]):
                self.search_queries += 1
                hits = [h["id"] for h in row]
                for i, n in Counter(hits).items():
                    if n > 1:
                        self.tally.add("duplicated", i, where + ": search", times=n)
                    possible = L.states.get(i)
                    if possible is None:
                        self.tally.add("phantom_ids", i, where + ": search")
                    elif all(s is DELETED for s in possible):
                        self.tally.add("resurrected_deletes", i, where + ": search", query_of=qid)
                if L.states[qid] == [L.last_text[qid]] and qid not in hits:
                    self.search_misses += 1  # informational: near-identical texts can crowd it out of the top 10

    # ---- deep checks (server stopped) -------------------------------------------------------------------------
    def deep_check(self, where: str) -> dict:
        """Open the collection in this process (the server is stopped) and compare it with the ledger."""
        from hotswap.serve import Collection
        from hotswap.serve.docstore import DOCSTORE_NAME, DocStore
        from hotswap.upgrade import open_upgrade

        self.deep_checks += 1
        t0 = time.monotonic()
        L, T, rng = self.ledger, self.tally, random.Random(f"{self.args.seed}:{where}:deep")
        col = Collection(self.path)
        docs = DocStore(self.path / DOCSTORE_NAME)
        try:
            pending = docs.pending()
            texts = docs.get_many(list(docs))
        finally:
            docs.close()
        # the docstore against the ledger (every id ever known)
        for i in L.states:
            self.compare(i, texts.get(i, DELETED), where + ": docstore")
        for i in texts:
            if i not in L.states:
                T.add("phantom_ids", i, where + ": docstore")
        stores, closers = [], []
        try:
            if col.upgrade is None:
                index = col.open_index()
                closers.append(index)
                stores.append(("index", index, col.state["model"]))
            else:
                up = open_upgrade(col.upgrade_path)
                closers.append(up)
                stores += [("old", up.old, col.state["model"]), ("new", up.new, col.upgrade["model"])]
            info = {"where": where, "docstore": len(texts), "pending": len(pending),
                    "upgrade": col.upgrade is not None, "model": col.state["model"]}
            ids_of = {}
            for name, store, model in stores:
                ids_of[name] = self.store_ids(name, store, where)
                info[f"{name}_items"] = len(ids_of[name])
            main = "old" if "old" in ids_of else "index"
            for i in set(texts) - ids_of[main]:
                T.add("lost", i, f"{where}: {main} index lacks a docstore id")
            for i in ids_of[main] - set(texts):
                T.add("resurrected_deletes" if L.ever_deleted(i) else "phantom_ids", i,
                      f"{where}: {main} index holds an id the docstore lacks")
            if "new" in ids_of:
                for i in ids_of["new"] - ids_of["old"]:
                    T.add("resurrected_deletes" if L.ever_deleted(i) else "phantom_ids", i,
                          f"{where}: new partition id not in the old index")
                done = len(ids_of["new"])
                info["backfilled"] = done
            for name, store, model in stores:
                held = ids_of[name] & set(texts)
                n = self.args.vector_sample
                check = L.focus(self.last_deep, rng, n // 2, n - n // 2, among=held)
                enc = self.loader(model)
                bad = 0
                for start in range(0, len(check), 256):
                    chunk = check[start:start + 256]
                    X = np.asarray(store.get(chunk), np.float32)
                    E = np.asarray(enc.encode([texts[i] for i in chunk]), np.float32)
                    cos = (X * E).sum(1) / (np.linalg.norm(X, axis=1) * np.linalg.norm(E, axis=1) + 1e-12)
                    for i, v in zip(chunk, cos):
                        if v < COSINE_MIN:
                            bad += 1
                            T.add("stale_texts", i, f"{where}: {name} vector", cosine=round(float(v), 4),
                                  model=model)
                info[f"{name}_vectors_checked"], info[f"{name}_stale_vectors"] = len(check), bad
        finally:
            for s in closers:
                getattr(s, "close", lambda: None)()
        info["s"] = round(time.monotonic() - t0, 1)
        print(f"  deep check {where}: {json.dumps(info)}", flush=True)
        self.deep.append(info)
        self.last_deep = L.seq
        return info

    def store_ids(self, name: str, store, where: str) -> set[str]:
        """The store's live ids; ids held twice (id map, live count, raw database rows) -> duplicated."""
        from hotswap.errors import CorruptStoreError

        try:
            ids = store.ids
        except CorruptStoreError as e:  # e.g. FAISS: the same live id in two rows
            self.tally.add("duplicated", f"#{name}-store", f"{where}: {e}")
            return set()
        for i, n in Counter(ids).items():
            if n > 1:
                self.tally.add("duplicated", i, f"{where}: {name} ids", times=n)
        if len(store) != len(set(ids)):
            self.tally.add("duplicated", f"#{name}-count", f"{where}: {name} counts {len(store)} items but holds "
                           f"{len(set(ids))} ids")
        if hasattr(store, "_scan"):  # database rows, read directly
            for i, n in Counter(i for i, _ in store._scan()).items():
                if n > 1:
                    self.tally.add("duplicated", i, f"{where}: {name} database rows", times=n)
        return set(ids)

    def stop_check_restart(self, where: str, restart: bool = True) -> None:
        if not self.server.stop():
            print("  the server did not stop on SIGTERM within 180 s; killed", flush=True)
        self.deep_check(where)
        if restart:
            self.server.start()

    # ---- the run ---------------------------------------------------------------------------------------------
    def acked_burst(self, n: int) -> None:
        w = self.burst(n)
        w.join()

    def run(self) -> dict:
        a, t0 = self.args, time.monotonic()
        split = phase_kills(a.kills)
        print(f"== {self.backend}: {a.n_docs} documents, {a.kills} kills {split}", flush=True)
        k, self.error = 0, None
        try:
            self.server.start(timeout=900)
            with self.server.client() as c:
                self.model_ids["old"] = self.status(c)["model_id"]
            # before: idle on static
            for _ in range(split["before"]):
                k += 1
                self.kill_cycle(k)
            self.acked_burst(10)
            self.http_check("end of before", full=True)
            self.stop_check_restart("end of before")

            # during: the upgrade to the new model
            self.phase, self.phase_start = "during", self.ledger.seq
            with self.server.client() as c:
                r = self.server.request(c, "POST", "/upgrade", json={"model": a.new, "batch_size": a.upgrade_batch,
                                                                      "seed": a.seed})
                r.raise_for_status()
                self.model_ids["new"] = r.json()["upgrade"]["model_id"]
            for _ in range(split["during"]):
                k += 1
                self.kill_cycle(k)
            self.stop_check_restart("during the upgrade (before commit)")
            t_wait = time.monotonic()
            deadline = t_wait + a.backfill_timeout
            with self.server.client() as c:
                while (s := self.status(c))["state"] != "complete":
                    if s["state"] not in ("backfilling",) or time.monotonic() > deadline:
                        raise RuntimeError(f"the backfill did not complete: {json.dumps(s)[:800]}")
                    self.acked_burst(3)
                    time.sleep(1.0)  # writes go on, but leave the backfill the CPU most of the time
            print(f"  backfill completed {time.monotonic() - t_wait:.1f} s after the last kill's checks", flush=True)
            self.acked_burst(6)
            self.http_check("complete, before commit", full=True)
            writer = self.burst(8)  # the commit meets writes in flight
            time.sleep(0.05)
            with self.server.client() as c:
                for _ in range(20):
                    r = self.server.request(c, "POST", "/upgrade/commit")
                    if r.status_code != 409:
                        break
                    time.sleep(0.5)
            writer.join()
            self.upgrade_committed = r.status_code == 200
            if not self.upgrade_committed:
                print(f"  commit refused: {r.status_code} {r.text[:300]}", flush=True)
            self.http_check("after commit", full=True)

            # after: idle on the new model
            self.phase, self.phase_start = "after", self.ledger.seq
            for _ in range(split["after"]):
                k += 1
                self.kill_cycle(k)
            self.acked_burst(10)
            self.http_check("end of after", full=True)
            self.stop_check_restart("final", restart=False)
        except Exception as e:  # a case that cannot go on (e.g. a server that does not come back): recorded
            self.error = {"phase": self.phase, "after_kills": k, "error": f"{type(e).__name__}: {e}"[:4000],
                          "traceback": traceback.format_exc()[-6000:], "server_log_tail": self.server.log_tail()}
            print(f"!! {self.backend}: stopped in phase {self.phase} after {k} kills: {self.error['error']}\n"
                  f"{self.error['traceback']}", flush=True)
        finally:
            self.server.kill()
        counts = self.tally.counts()
        kills = sum(self.kills.values())
        row = {"backend": self.backend, "kills": kills, "recovered": self.recovered,
               "acknowledged_writes": self.ledger.acknowledged, "lost": counts["lost"],
               "duplicated": counts["duplicated"], "resurrected_deletes": counts["resurrected_deletes"],
               "stale_texts": counts["stale_texts"], "responses_5xx": self.server.s5xx,
               "wall_s": round(time.monotonic() - t0, 1),
               "kills_by_phase": dict(self.kills), "kills_while_backfilling": self.kills_while_backfilling,
               "kills_mid_request": self.kills_mid_request, "state_at_kill": self.state_at_kill,
               "interrupted_requests": self.server.interrupted, "phantom_ids": counts["phantom_ids"],
               "acknowledged_requests": self.ledger.acknowledged_requests,
               "unacknowledged_doc_ops": self.ledger.uncertain_ops, "uncertain_settled_by_reads": self.ledger.resolved,
               "ids_written": len(self.ledger.written), "upgrade_committed": self.upgrade_committed,
               "n_docs": a.n_docs, "seed": a.seed, "upgrade_batch_size": a.upgrade_batch,
               "restart_s": {"median": round(float(np.median(self.restart_s)), 2) if self.restart_s else None,
                             "max": round(max(self.restart_s), 2) if self.restart_s else None},
               "http_checks": self.checks, "search_queries_checked": self.search_queries,
               "search_misses_own_text": self.search_misses, "deep_checks": self.deep,
               "failures": self.tally.failures, "error": self.error}
        row["met"] = met(row, a.min_kills)
        return row


def phase_kills(kills: int) -> dict[str, int]:
    """``kills`` spread over the phases: about 30 % before, 40 % during the upgrade, the rest after."""
    before, during = round(kills * 0.3), round(kills * 0.4)
    return {"before": before, "during": during, "after": max(0, kills - before - during)}


def defective(row: dict) -> bool:
    """Something went wrong (whatever the number of kills)."""
    return (row["recovered"] != row["kills"] or not row["upgrade_committed"] or row["error"] is not None
            or any(row[k] for k in ("lost", "duplicated", "resurrected_deletes", "stale_texts", "responses_5xx",
                                    "phantom_ids")))


def met(row: dict, min_kills: int = MIN_KILLS) -> bool:
    return row["kills"] >= min_kills and not defective(row)


def table(rows: list[dict], min_kills: int = MIN_KILLS) -> str:
    cols = ("backend", "kills", "recovered", "acknowledged_writes", "lost", "duplicated", "resurrected_deletes",
            "stale_texts", "responses_5xx", "wall_s")
    lines = ["| " + " | ".join(cols) + " | met |", "|" + "---|" * (len(cols) + 1)]
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + f" | {'yes' if r['met'] else 'NO'} |")
    lines.append(f"| target | >= {min_kills} | = kills | - | 0 | 0 | 0 | 0 | 0 | - | |")
    return "\n".join(lines)


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="faiss,qdrant,milvus,postgres")
    p.add_argument("--merge", action="store_true", help="keep the runs of backends not run now from --out")
    p.add_argument("--kills", type=int, default=20, help="per backend, spread over before / during / after")
    p.add_argument("--min-kills", type=int, default=MIN_KILLS, help="kills per backend the target asks for")
    p.add_argument("--new", default="minilm", help="the model the upgrade re-embeds with")
    p.add_argument("--allow-model", action="append", default=[], metavar="NAME=FOLDER",
                   help="a model folder the server offers by NAME (hotswap serve --allow-model); repeat for several")
    p.add_argument("--n-docs", type=int, default=1000, help="documents in each fresh collection")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "writes.json")
    p.add_argument("--port", type=int, default=0, help="server port (0: a free one)")
    p.add_argument("--burst", type=int, default=100, help="write requests per burst at most")
    p.add_argument("--max-delay", type=float, default=2.5, help="a kill comes 0.05 .. this many s into a burst")
    p.add_argument("--upgrade-batch", type=int, default=16, help="backfill batch size of the upgrade")
    p.add_argument("--search-sample", type=int, default=64, help="written live ids searched in a full check")
    p.add_argument("--vector-sample", type=int, default=200,
                   help="ids beyond the recently written and the uncertain ones whose vectors a deep check tests")
    p.add_argument("--backfill-timeout", type=float, default=900.0)
    p.add_argument("--keep", action="store_true", help="keep the work folder (kept anyway when a check fails)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hotswap.data import load_dataset

    t0 = time.monotonic()
    corpus = dict(load_dataset("debian", max_docs=args.n_docs).corpus)  # what --model static --max-docs indexes
    full = load_dataset("debian").corpus
    pool = [t for i, t in full.items() if i not in corpus and t.strip()]
    work = Path(tempfile.mkdtemp(prefix="hotswap-writes-"))
    rows, failed = [], False
    try:
        for backend in args.backends.split(","):
            row = Run(args, backend, corpus, pool, work).run()
            rows.append(row)
            failed |= defective(row)
            print(table(rows[-1:], args.min_kills), flush=True)
    finally:
        if failed or args.keep:
            print(f"work folder kept: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.merge:
        rows = kept_rows(args.out, "runs", args.backends.split(",")) + rows
    result = {"runs": rows, "target": target(args.min_kills),
              "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
                          "python": platform.python_version()},
              "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "met": bool(rows) and all(r["met"] for r in rows), "wall_s": round(time.monotonic() - t0, 1)}
    write_json(args.out, result)
    print(f"\nwrite faults (target: {result['target']})\n{table(rows, args.min_kills)}\nwall time "
          f"{result['wall_s']:.0f} s -> {args.out}")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
