"""Security properties: loopback by default, no pickle anywhere, paths stay inside the corpus.

- The server binds 127.0.0.1 unless told otherwise (``rag serve``, ``ui.app.serve``); checked on
  the real listening socket, and its file route does not hand out files from elsewhere.
- No pickle: the package source never imports pickle-like modules, calls ``torch.load`` or
  ``np.load(..., allow_pickle=True)`` (checked on the syntax tree, so comments don't count);
  the index folder holds only JSON, JSONL and FAISS files; the embedding model is safetensors;
  loading and searching an index works with pickle disabled.
- Paths: ``doc_id`` is the file's path relative to the corpus folder; symlinks (files or
  folders) that point outside the corpus and hidden folders are not indexed.
"""

from __future__ import annotations

import ast
import inspect
import pickle
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag import cli
from rag.corpus import scan_corpus
from rag.embed import SentenceTransformerEmbeddings
from rag.knowledge import KnowledgeBase
from rag.settings import Settings, default_embedding_model

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rag", "ui", "evals")  # what pyproject ships
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "jsonpickle"}
INDEX_SUFFIXES = {".json", ".jsonl", ".faiss", ".npy"}  # .npy: read with allow_pickle=False
LOOPBACK_HEX = "0100007F"  # 127.0.0.1 in /proc/net/tcp


# --- no pickle ---------------------------------------------------------------------------------


def unsafe_loading(source: str) -> list[str]:
    """Pickle-based (de)serialization in Python source: imports, torch.load, allow_pickle=True."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if func.endswith(("torch.load", "pd.read_pickle", "pandas.read_pickle")) or func == "read_pickle":
                found.append(f"{func}(...)")
            for kw in node.keywords:
                if kw.arg in {"allow_pickle", "trust_remote_code"} and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append(f"{func}(..., {kw.arg}={ast.unparse(kw.value)})")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in PICKLE_MODULES:
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_the_checker_finds_pickle() -> None:
    bad = (
        "import pickle\nfrom joblib import load\nimport numpy as np\nimport torch\n"
        "x = np.load('a.npy', allow_pickle=True)\nm = torch.load('m.bin')\n"
        "t = AutoModel.from_pretrained('x', trust_remote_code=True)\n"
    )
    assert len(unsafe_loading(bad)) == 5
    assert unsafe_loading("# never pickle\nimport json\nnp.load('a.npy', allow_pickle=False)\n") == []


def test_no_pickle_in_the_package_source() -> None:
    files = [p for package in PACKAGES for p in (REPO_ROOT / package).rglob("*.py")]
    assert len(files) > 10
    problems = {str(p.relative_to(REPO_ROOT)): found for p in files if (found := unsafe_loading(p.read_text("utf-8")))}
    assert problems == {}


def test_index_folder_holds_no_pickle(seeds_kb: KnowledgeBase) -> None:
    index_dir = seeds_kb.index_dir
    files = [p for p in index_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert path.suffix in INDEX_SUFFIXES or path.name in {"CURRENT", ".lock"}, path
        head = path.read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in {bytes([n]) for n in range(2, 6)}), f"{path} is a pickle"


def test_embedding_model_is_safetensors_only() -> None:
    model = Path(default_embedding_model())
    assert (model / "model.safetensors").is_file()
    weights = [p.name for p in model.rglob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"}]
    assert weights == [], "weights that torch.load would unpickle"


def test_index_loads_and_searches_with_pickle_disabled(
    seeds_kb: KnowledgeBase, embedder: SentenceTransformerEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("pickle was used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    kb = KnowledgeBase(seeds_kb.corpus_dir, seeds_kb.index_dir, settings=seeds_kb.settings, embedder=embedder)
    hits = kb.search("Who funded the country studies and workshops?", k=3)
    assert hits


# --- paths -----------------------------------------------------------------------------------------


def test_doc_ids_are_relative_paths_inside_the_corpus(tmp_path: Path, tiny_articles: dict[str, str]) -> None:
    corpus = tmp_path / "corpus"
    outside = tmp_path / "outside"
    (corpus / "a" / "b").mkdir(parents=True)
    (corpus / ".git").mkdir()
    outside.mkdir()
    (corpus / "a" / "b" / "apples.txt").write_text(tiny_articles["apples.txt"], encoding="utf-8")
    (corpus / "trains.txt").write_text(tiny_articles["trains.txt"], encoding="utf-8")
    (corpus / ".git" / "notes.txt").write_text("Hidden\n\nA hidden folder's file.", encoding="utf-8")
    (outside / "secret.txt").write_text("Secret memo\n\nThe vault code is 4711.", encoding="utf-8")
    (outside / "nested").mkdir()
    (outside / "nested" / "more.txt").write_text("More secrets\n\nThe second vault code is 0815.", encoding="utf-8")
    (corpus / "link_to_secret.txt").symlink_to(outside / "secret.txt")
    (corpus / "linked_dir").symlink_to(outside, target_is_directory=True)
    (corpus / "a" / "up.txt").symlink_to(Path("..") / ".." / "outside" / "secret.txt")  # relative, escapes
    (corpus / "inside_link.txt").symlink_to(corpus / "trains.txt")  # inside: a duplicate, not an escape

    files = scan_corpus(corpus, Settings())
    doc_ids = [f.doc_id for f in files]
    assert doc_ids == ["a/b/apples.txt", "inside_link.txt", "trains.txt"]
    root = corpus.resolve()
    for f in files:
        assert not Path(f.doc_id).is_absolute() and ".." not in Path(f.doc_id).parts
        assert f.path.resolve().is_relative_to(root)
        assert (corpus / f.doc_id).resolve() == f.path.resolve()


def test_symlinks_outside_are_never_searchable(
    tmp_path: Path, tiny_articles: dict[str, str], embedder: SentenceTransformerEmbeddings
) -> None:
    corpus = tmp_path / "corpus"
    outside = tmp_path / "outside"
    corpus.mkdir()
    outside.mkdir()
    (corpus / "bees.txt").write_text(tiny_articles["bees.txt"], encoding="utf-8")
    (outside / "secret.txt").write_text("Secret memo\n\nThe vault code is 4711.", encoding="utf-8")
    (corpus / "secret.txt").symlink_to(outside / "secret.txt")
    (corpus / "more").symlink_to(outside, target_is_directory=True)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    kb = KnowledgeBase(corpus, tmp_path / "index", settings=settings, embedder=embedder).ensure_ready()
    assert set(kb.searcher.index.articles) == {"bees.txt"}
    for hit in kb.search("What is the vault code in the secret memo?", k=5):
        assert "4711" not in hit.text and hit.doc_id == "bees.txt"
    manifest_text = (kb.searcher.index.version_dir / "manifest.json").read_text(encoding="utf-8")
    assert str(outside) not in manifest_text and "secret" not in manifest_text


def test_corpus_given_through_a_symlink_still_works(tmp_path: Path, tiny_articles: dict[str, str]) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "bees.txt").write_text(tiny_articles["bees.txt"], encoding="utf-8")
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    assert [f.doc_id for f in scan_corpus(tmp_path / "alias", Settings())] == ["bees.txt"]


# --- the server binds loopback by default ---------------------------------------------------------


def test_loopback_is_the_default_everywhere() -> None:
    from ui import app

    # ui.app.serve listens on settings.ui_host unless told otherwise
    assert inspect.signature(app.serve).parameters["host"].default is None
    assert Settings.model_fields["ui_host"].default == "127.0.0.1"
    # rag serve passes no host unless given one, so the settings' loopback default applies
    assert cli.build_parser().parse_args(["serve"]).host is None
    assert Settings().ui_host == "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, int]]:
    """``ui.app.serve`` with its defaults, over a corpus that does not exist (nothing to load)."""
    from ui import app

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    port = _free_port()
    demo = app.serve(corpus_dir=tmp_path / "no-corpus", index_dir=tmp_path / "index", port=port, block=False)
    try:
        deadline = time.monotonic() + 30
        while not listening_addresses(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        yield demo, port
    finally:
        demo.close(verbose=False)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_serve_listens_on_loopback_only(served: tuple[Any, int]) -> None:
    demo, port = served
    addresses = listening_addresses(port)
    assert addresses, "the server is not listening"
    assert addresses == {LOOPBACK_HEX}, f"listening on {addresses}, not only 127.0.0.1"
    assert getattr(demo, "share_url", None) in (None, "")


def test_server_does_not_serve_files_from_elsewhere(served: tuple[Any, int], tmp_path: Path, seeds_dir: Path) -> None:
    _, port = served
    secret = tmp_path / "secret.txt"
    secret.write_text("The vault code is 4711.", encoding="utf-8")
    for path in (secret, Path("/etc/passwd"), seeds_dir / "000_57b7b5ccac7b4b3f.txt", REPO_ROOT / "pyproject.toml"):
        for prefix in ("/gradio_api/file=", "/file="):
            url = f"http://127.0.0.1:{port}{prefix}{path}"
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    status, body = response.status, response.read(4096)
            except urllib.error.HTTPError as exc:
                status, body = exc.code, b""
            assert status in (403, 404) or path.read_bytes()[:50] not in body, f"{url} was served ({status})"
