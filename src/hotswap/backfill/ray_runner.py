"""``RayExecutor``: encode the backfill's batches on a pool of Ray Data actors; the driver still writes the store.

How it works. ``BackfillRunner`` hands an executor a lazy iterator of plan batches ``(ids, items)`` and commits
whatever comes back, in order, one atomic segment per batch. ``RayExecutor.map`` turns that iterator into one
streaming Ray Data pipeline::

    driver: plan batch j --put--> feed queue (a Ray actor) --> read task: one row = one whole plan batch
            --> map_batches(_EncodeBatch, batch_size=1, ActorPoolStrategy(size=num_actors)) --> rows in plan order
            --> driver: checks, yields (ids_j, X_j) --> BackfillRunner commits segment j

* Each actor builds its encoder once, from the spec (``load_encoder("static" | "minilm" | "mpnet" | folder)``),
  and encodes exactly one plan batch per call (``batch_size=1`` over rows that each hold a whole batch) with the
  same ``encoder.encode(items, show_progress=False)`` call as ``LocalExecutor``: batch boundaries, and hence the
  stored vectors, are the local runner's (``gallery_checksum`` equal; bit-equality needs an encoder whose output
  does not depend on the thread count; actors run ``num_cpus_per_actor`` threads: the static model's never
  does, minilm's matched on 1,000 Debian documents here, a transformer may in principle differ in the last bit).
* ``preserve_order`` is set on the dataset's context, and every result carries its batch number, which the driver
  checks, so results come back in input order whatever actor finished first.
* The input stays lazy and bounded: the driver fetches the items of a batch only when fewer than ``window``
  (default ``8 * num_actors``) batches are in flight, so a huge plan is never materialised in the driver.
  One pipeline serves the whole ``map`` call, so the actors start (and load the model) once: a fresh
  ``from_items`` dataset per window would start a new actor pool per window (about 6 s each on a 2-core box).
* Every result also carries the actor's encoder id; a result from other weights (a worker with another model
  installed) raises ``ModelMismatchError`` before anything is committed, as does ``expected_model_id`` (the
  upgrade's ``new_model_id``) differing from the spec's encoder id, checked before any batch is fetched.
* Costs: Ray Data keeps no actor pool between pipelines, so every ``map`` call (every ``BackfillRunner.run``)
  starts its actors and loads the model again (5-7 s for static, ~20 s for minilm on a 2-core box, first
  batch included); worth it for long backfills on many cores or nodes, not for a few thousand items. Each row
  is its own block (``target_max_block_size=1`` on the dataset's context) and results are read with
  ``prefetch_batches=0``, so no batch waits in Ray for the next one to arrive.
* Only the driver writes: actors return vectors, ``BackfillRunner`` (in the driver process) commits them, so crash
  safety, resume and exactly-once are the local runner's. Killing the driver loses only uncommitted batches.

Scaling out to a real Ray cluster::

    ray start --head --port=6379                       # on the head node
    ray start --address=<head-ip>:6379                 # on each worker node
    hotswap backfill ... --executor ray --ray-address auto      # on the head node (the driver)

``ray_address="auto"`` joins the cluster this node belongs to; ``"ray://<head>:10001"`` connects through Ray
Client from elsewhere. The store folder must be on the driver's disk (only the driver touches it); every worker
node needs hotswap and the model installed (``pip install hotswap[models,ray]`` and ``hotswap setup-models``, or a
model folder at the same path), since actors load the encoder from their own disk. With ``ray_address=None`` and
no Ray running, a local cluster is started (object store ``object_store_memory``, 512 MiB by default) and shut
down by ``close()``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from hotswap.errors import HotswapError, ModelMismatchError

Batch = tuple[list[str], list[Any]]
_END = None  # the feed queue's end-of-input marker


def pack_items(items: list[Any]) -> bytes:
    """One plan batch's items as bytes for the feed queue, never as a pickle: texts as UTF-8 JSON, anything else
    (images) as one stacked ``.npy`` array written with ``allow_pickle=False`` (so items must be arrays)."""
    if all(isinstance(x, str) for x in items):
        return b"J" + json.dumps(items).encode("utf-8")
    buf = io.BytesIO()
    np.save(buf, np.stack([np.asarray(x) for x in items]), allow_pickle=False)
    return b"N" + buf.getvalue()


def unpack_items(blob: bytes) -> list[Any]:
    """The inverse of ``pack_items``."""
    if blob[:1] == b"J":
        return json.loads(blob[1:].decode("utf-8"))
    if blob[:1] == b"N":
        return list(np.load(io.BytesIO(blob[1:]), allow_pickle=False))
    raise HotswapError("RayExecutor got a batch in an unknown format (neither JSON texts nor a .npy array)")


class _EncodeBatch:
    """Ray Data callable class: loads the encoder once per actor, encodes one plan batch per call."""

    def __init__(self, spec: str, threads: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # pragma: no cover - torch is a core dependency
            pass
        from hotswap.encoders import load_encoder

        self.encoder = load_encoder(spec)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        if len(batch["seq"]) != 1:  # batch_size=1: one row = one plan batch
            raise HotswapError(f"RayExecutor expects one plan batch per call; got {len(batch['seq'])}")
        items = unpack_items(batch["items"][0])
        X = np.ascontiguousarray(self.encoder.encode(items, show_progress=False), dtype=np.float32)
        return {"seq": np.asarray(batch["seq"], np.int64), "n": np.array([X.shape[0]], np.int64),
                "dim": np.array([X.shape[1]], np.int64), "X": np.array([X.tobytes()], dtype=object),
                "model_id": np.array([self.encoder.id], dtype=object)}


def _queue_datasource(queue: Any) -> Any:
    """A Ray Data source with one streaming read task: one block (one row) per plan batch taken from ``queue``."""
    import pyarrow as pa
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    def read() -> Iterator[pa.Table]:
        while (msg := queue.get(block=True)) is not _END:
            seq, ids, blob = msg
            yield pa.table({"seq": pa.array([seq], pa.int64()), "ids": pa.array([ids], pa.list_(pa.string())),
                            "items": pa.array([blob], pa.binary())})

    class QueueFeed(Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context: Any = None) -> list[ReadTask]:
            meta = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=None)
            return [ReadTask(read, meta)]

    return QueueFeed()


class RayExecutor:
    """Encode backfill batches on ``num_actors`` Ray Data actors; same interface as ``LocalExecutor``.

    ``encoder``: what ``load_encoder`` accepts ("static", "minilm", "mpnet" or a model folder), loaded once in
    each actor. ``ray_address``: ``None`` (use the running Ray, else start a local one), ``"auto"`` or
    ``"ray://host:10001"``. ``expected_model_id``: the upgrade's new model id; ``map`` refuses to start when
    the encoder's id differs. ``window``: most batches fetched but not yet returned (default ``8 * num_actors``).
    """

    def __init__(self, encoder: str | os.PathLike, num_actors: int = 2, num_cpus_per_actor: float = 1,
                 ray_address: str | None = None, expected_model_id: str | None = None, window: int | None = None,
                 object_store_memory: int = 512 * 1024**2) -> None:
        if isinstance(encoder, os.PathLike):
            encoder = os.fspath(encoder)  # a model folder: the same path must exist on every worker node
        if not isinstance(encoder, str):
            raise TypeError("RayExecutor takes an encoder spec ('static', 'minilm', 'mpnet' or a model folder), "
                            f"not {type(encoder).__name__}: each actor loads its own copy")
        if num_actors < 1 or num_cpus_per_actor <= 0:
            raise ValueError(f"need num_actors >= 1 and num_cpus_per_actor > 0; got {num_actors}, "
                             f"{num_cpus_per_actor}")
        self.encoder_spec, self.num_actors, self.num_cpus_per_actor = encoder, int(num_actors), num_cpus_per_actor
        self.ray_address, self.expected_model_id = ray_address, expected_model_id
        if window is not None and window < 1:
            raise ValueError(f"window must be positive; got {window}")
        self.window = max(2, int(window or 8 * self.num_actors))  # 2: the next batch is always queued
        self.object_store_memory = int(object_store_memory)
        self._model_id: str | None = None
        self._started_ray = False

    # ---- cluster --------------------------------------------------------------------------------------------
    def start(self) -> RayExecutor:
        """Connect to Ray (``ray_address``) or start a local instance; a no-op when Ray is already initialised."""
        import ray

        if ray.is_initialized():
            return self
        kwargs: dict[str, Any] = {"address": self.ray_address, "include_dashboard": False,
                                  "ignore_reinit_error": True, "log_to_driver": False,
                                  "logging_level": logging.WARNING}
        if self.ray_address is None:  # a local cluster: room for every actor, modest object store
            need = int(np.ceil(self.num_actors * self.num_cpus_per_actor))
            kwargs.update(num_cpus=max(os.cpu_count() or 1, need), object_store_memory=self.object_store_memory)
        ray.init(**kwargs)
        self._started_ray = self.ray_address is None
        return self

    def close(self) -> None:
        """Shut down the local Ray instance if this executor started it."""
        import ray

        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray = False

    def __enter__(self) -> RayExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- model id -------------------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """The id of the encoder the actors build (loaded once in the driver, lazily, from the same spec)."""
        if self._model_id is None:
            from hotswap.encoders import load_encoder

            self._model_id = load_encoder(self.encoder_spec).id
        return self._model_id

    def check_model(self, expected_model_id: str | None = None) -> None:
        """Raise ``ModelMismatchError`` unless the encoder's id is ``expected_model_id`` (default: the one given)."""
        expected = expected_model_id or self.expected_model_id
        if expected is not None and self.model_id != expected:
            raise ModelMismatchError(f"RayExecutor encodes with {self.model_id!r} (spec {self.encoder_spec!r}) but "
                                     f"the upgrade is to {expected!r}; use the upgrade's new model")

    # ---- encoding -------------------------------------------------------------------------------------------
    def map(self, batches: Iterable[Batch]) -> Iterator[tuple[list[str], np.ndarray]]:
        """Yield ``(ids, vectors)`` per input batch, in input order, encoded by the actor pool."""
        self.check_model()
        reference = self.model_id
        return self._map(batches, reference)

    def _map(self, batches: Iterable[Batch], reference: str) -> Iterator[tuple[list[str], np.ndarray]]:
        import ray
        import ray.data
        from ray.util.queue import Queue

        self.start()
        source = iter(batches)
        try:  # nothing to do: do not start any actor
            first = next(source)
        except StopIteration:
            return
        queue = Queue(actor_options={"num_cpus": 0})
        threads = max(1, int(self.num_cpus_per_actor))
        with warnings.catch_warnings():  # Ray 2.60's default DataContext warns about its own deprecated fields
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx = ray.data.DataContext.get_current()
        # The dataset copies the context when it is built: results in input order, no progress bars, and every
        # row its own block (target 1 byte; a row is never split), so no batch waits for the next one.
        saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.print_on_execution_start,
                 ctx.target_max_block_size)
        (ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.print_on_execution_start,
         ctx.target_max_block_size) = True, False, False, 1
        try:
            ds = ray.data.read_datasource(_queue_datasource(queue), override_num_blocks=1, num_cpus=0).map_batches(
                _EncodeBatch, fn_constructor_args=(self.encoder_spec, threads), batch_size=1, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=self.num_actors), num_cpus=self.num_cpus_per_actor,
                runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                          "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(threads),
                                          "MKL_NUM_THREADS": str(threads)}})
        finally:
            (ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.print_on_execution_start,
             ctx.target_max_block_size) = saved
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"

        pending: deque[list[str]] = deque()  # ids of the batches in flight, in order
        state: dict[str, Any] = {"next": first, "seq": 0, "done": False, "error": None}

        def top_up() -> None:
            """Fetch and send batches until ``window`` are in flight or the input ends (then send the end mark)."""
            while not state["done"] and len(pending) < self.window:
                try:
                    ids, items = state["next"] if state["next"] is not None else next(source)
                    state["next"] = None
                except StopIteration:
                    state["done"] = True
                except Exception as exc:  # a failing fetch: finish the batches in flight, then raise it
                    state["done"], state["error"] = True, exc
                else:
                    ids = list(ids)
                    queue.put((state["seq"], ids, pack_items(list(items))))
                    pending.append(ids)
                    state["seq"] += 1
                    continue
                queue.put(_END)

        batches_out = None
        try:
            top_up()
            # batch_size=None: one Ray block (one plan batch) at a time; prefetch 0: take each as soon as it is
            # ready (a prefetching iterator holds a result back until the next one exists)
            batches_out = ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0)
            expected_seq = 0
            for out in batches_out:
                cols = (out["seq"], out["n"], out["dim"], out["X"], out["model_id"])
                for seq, n, dim, blob, model_id in zip(*cols, strict=True):
                    if int(seq) != expected_seq or not pending:
                        raise HotswapError(f"RayExecutor got batch {int(seq)} but expected batch {expected_seq}; "
                                           "results must come back in plan order")
                    if model_id != reference:
                        raise ModelMismatchError(f"a Ray actor encoded with {model_id!r} but this backfill uses "
                                                 f"{reference!r}; install the same model on every worker node")
                    ids = pending.popleft()
                    if int(n) != len(ids):
                        raise HotswapError(f"batch {expected_seq}: {int(n)} vectors for {len(ids)} ids")
                    X = np.frombuffer(blob, dtype=np.float32).reshape(int(n), int(dim)).copy()
                    expected_seq += 1
                    yield ids, X
                    top_up()
            if pending:
                raise HotswapError(f"the Ray pipeline ended with {len(pending)} batch(es) unanswered")
            if state["error"] is not None:
                raise state["error"]
        finally:
            if not state["done"]:  # stopped early (pause, error): let the read task end
                state["done"] = True
                try:
                    queue.put(_END)
                except Exception:  # noqa: BLE001 - best effort while unwinding
                    pass
            if batches_out is not None and hasattr(batches_out, "close"):
                batches_out.close()  # stops the streaming executor (and its actors) now, not at garbage collection
            try:
                # ray's remote() overloads type Queue.actor as "ActorHandle | type"; it is an ActorHandle
                ray.kill(queue.actor)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - best effort while unwinding
                pass
