"""Request and response bodies of the search service (pydantic; malformed input is a 422 naming the field).

Limits (each a 4xx with a message, never a 500): at most ``MAX_QUERIES`` texts per request, each 1 to
``MAX_TEXT_CHARS`` characters and not blank; writes of at most ``MAX_WRITE_BATCH`` documents (ids of 1 to
``MAX_ID_CHARS`` characters, texts of 1 to ``MAX_DOC_CHARS``, not blank); ``1 <= k <= MAX_K``; types are strict
(``"k": "10"`` and ``"query": 5`` are refused rather than coerced). Request bodies over ``MAX_BODY_BYTES`` get a 413
before they are parsed, and a search whose characters x k exceed ``MAX_COST`` is refused (``hotswap.serve.app``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator, model_validator

from hotswap.serve.service import SEARCH_MODES, SERVICE_ORDERS

MAX_QUERIES, MAX_TEXT_CHARS, MAX_K, MAX_BODY_BYTES = 64, 4096, 1000, 1 << 20
MAX_COST = 4_000_000  # characters of all the queries of one search x k (64 x 4,096 x 1,000 is 268M)
MAX_LOGGED_QUERIES = 5000  # texts of the query log an upgrade request may send (order 'popularity')
MAX_WRITE_BATCH, MAX_ID_CHARS, MAX_DOC_CHARS = 256, 512, 65536

Mode = Literal[SEARCH_MODES]  # type: ignore[valid-type]
Order = Literal[SERVICE_ORDERS]  # type: ignore[valid-type]
CandidateQuery = Literal["auto", "old", "adapted", "blended"]
MAX_CANDIDATES = 1000


class CascadeSettings(BaseModel):
    """Mode ``cascade``: ``candidates`` re-scored by the new model, at most ``encode_budget`` documents encoded
    per query (null = unlimited), candidates picked by ``candidate_query`` (``hotswap.search.cascade``)."""

    model_config = ConfigDict(extra="forbid")

    candidates: StrictInt | None = Field(None, ge=1, le=MAX_CANDIDATES)
    encode_budget: StrictInt | None = Field(None, ge=0, le=MAX_CANDIDATES)
    candidate_query: CandidateQuery | None = None


class SearchRequest(CascadeSettings):
    """``{"query": "text"}`` or ``{"queries": ["text", ...]}``, with ``k``, an optional ``mode`` and, for mode
    ``cascade``, its settings (unset ones: the upgrade's)."""

    model_config = ConfigDict(extra="forbid")

    query: StrictStr | None = Field(None, max_length=MAX_TEXT_CHARS)
    queries: list[StrictStr] | None = Field(None, min_length=1, max_length=MAX_QUERIES)
    k: StrictInt = Field(10, ge=1, le=MAX_K)
    mode: Mode | None = None

    @field_validator("queries")
    @classmethod
    def _each_text(cls, texts: list[str] | None) -> list[str] | None:
        for i, t in enumerate(texts or []):
            if len(t) > MAX_TEXT_CHARS:
                raise ValueError(f"queries[{i}] has {len(t)} characters; the limit is {MAX_TEXT_CHARS}")
        return texts

    @model_validator(mode="after")
    def _one_of(self) -> SearchRequest:
        if (self.query is None) == (self.queries is None):
            raise ValueError("give exactly one of 'query' (a text) or 'queries' (a list of texts)")
        if any(not t.strip() for t in self.texts):
            raise ValueError("a query text is empty or blank")
        return self

    @property
    def texts(self) -> list[str]:
        return [self.query] if self.query is not None else list(self.queries or [])


class Hit(BaseModel):
    """One result: the document's id, its score, and the first 200 characters of its text (null when the
    served texts do not hold it)."""

    id: str
    score: float
    text: str | None = None


class SearchResponse(BaseModel):
    mode: str
    model_id: str
    results: list[list[Hit]]


class UpgradeRequest(BaseModel):
    """Start an upgrade to ``model`` (a name the server offers: ``static``, ``minilm``, ``mpnet`` or one its operator
    added with ``--allow-model``)."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr = Field(..., min_length=1, max_length=256, description="a model this server offers")
    adapter: StrictStr | None = Field(None, min_length=1, max_length=64,
                                      description="name of a new->old adapter registered in the collection "
                                                  "(hotswap fit-adapter --into): search in mode 'adapted' with one "
                                                  "encoding, or in mode 'blended' when it is a blend")
    order: Order = "random"
    batch_size: StrictInt | None = Field(None, ge=1, le=65536)
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1)
    cascade: CascadeSettings | None = Field(None, description="serve mode 'cascade' by default during the upgrade "
                                            "({} for the default settings)")
    queries: list[StrictStr] | None = Field(None, min_length=1, max_length=MAX_LOGGED_QUERIES,
                                            description="order 'popularity': a query log (texts; the queries this "
                                                        "server answered when absent)")

    @field_validator("queries")
    @classmethod
    def _each_query(cls, texts: list[str] | None) -> list[str] | None:
        for i, t in enumerate(texts or []):
            if not t.strip():
                raise ValueError(f"queries[{i}] is empty or blank")
            if len(t) > MAX_TEXT_CHARS:
                raise ValueError(f"queries[{i}] has {len(t)} characters; the limit is {MAX_TEXT_CHARS}")
        return texts


class QueryModelRequest(BaseModel):
    """Answer queries of ``model`` on the unchanged index through ``adapters`` (newest link first)."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr = Field(..., min_length=1, max_length=256, description="a model this server offers")
    adapters: list[StrictStr] = Field(..., min_length=1, max_length=16,
                                      description="registered adapter names, applied in order: model -> ... -> "
                                                  "index model")


DocId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_CHARS)]


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: DocId
    text: StrictStr = Field(..., min_length=1, max_length=MAX_DOC_CHARS)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("the text is blank")
        return text


class UpsertRequest(BaseModel):
    """``{"documents": [{"id": ..., "text": ...}, ...]}``: insert or replace (a repeated id: its last text)."""

    model_config = ConfigDict(extra="forbid")

    documents: list[Document] = Field(..., min_length=1, max_length=MAX_WRITE_BATCH)


class DeleteRequest(BaseModel):
    """``{"ids": [...]}``: delete these documents (unknown ids are ignored)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[DocId] = Field(..., min_length=1, max_length=MAX_WRITE_BATCH)
