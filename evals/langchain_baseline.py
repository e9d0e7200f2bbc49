"""The stock LangChain retrieval pipeline a user would otherwise build, as the eval's baseline.

Each indexed file's full text is split by ``RecursiveCharacterTextSplitter(chunk_size=1000,
chunk_overlap=200, add_start_index=True)``, embedded by the system's embedder and searched in a
``faiss.IndexFlatIP`` over normalized vectors. A chunk is mapped to every paragraph (of the
system's parse) its character span overlaps, so it can be scored at paragraph level.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evals import metrics as M
from evals.gold_paragraphs import paragraph_spans, read_source

if TYPE_CHECKING:
    from rag.knowledge import KnowledgeBase


@dataclass(frozen=True)
class BaselineChunk:
    doc_id: str
    start: int
    end: int
    text: str
    paragraphs: M.Unit


class LangChainBaseline:
    """What users would build with stock parts: recursive 1000/200 chunks, FAISS inner product.

    Same embedder as the system; chunks come from each indexed file's full text; a chunk maps to
    every paragraph (of the system's parse) its ``[start_index, start_index + len)`` span overlaps.
    """

    chunk_size = 1000
    chunk_overlap = 200

    def __init__(self, kb: KnowledgeBase, corpus_dir: Path) -> None:
        import faiss
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap, add_start_index=True
        )
        self.chunks: list[BaselineChunk] = []
        for article in kb.articles():
            doc_id = article.doc_id
            text = read_source(corpus_dir / doc_id)
            paragraphs = paragraph_spans(article)
            for doc in splitter.create_documents([text], metadatas=[{"source": doc_id}]):
                start = int(doc.metadata.get("start_index", -1))
                if start < 0:
                    start = max(text.find(doc.page_content), 0)
                end = start + len(doc.page_content)
                unit = M.chunk_paragraphs(doc_id, start, end, paragraphs)
                self.chunks.append(BaselineChunk(doc_id, start, end, doc.page_content, unit))
        self.embedder = kb.embedder
        vectors = np.asarray(self.embedder.embed_documents([c.text for c in self.chunks]), dtype=np.float32)
        faiss.normalize_L2(vectors)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def search(self, query: str, k: int) -> list[BaselineChunk]:
        import faiss

        vec = np.asarray([self.embedder.embed_query(query)], dtype=np.float32)
        faiss.normalize_L2(vec)
        _, ids = self.index.search(vec, min(k, len(self.chunks)))
        return [self.chunks[i] for i in ids[0] if i >= 0]

    def describe(self) -> dict[str, Any]:
        sizes = [len(c.paragraphs) for c in self.chunks]
        return {
            "chunks": len(self.chunks),
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "mean_chars_per_chunk": float(np.mean([len(c.text) for c in self.chunks])) if self.chunks else 0.0,
            "mean_paragraphs_per_chunk": float(np.mean(sizes)) if sizes else 0.0,
        }
