"""The sweep runner behind ``xsteer sweep``: plan, shard, generate, judge, record, resume, gather.

The plan is a deterministic list of work units (benchmark x method setting x a batch of samples);
unit ``i`` goes to process ``i % world_size``. A sample's image depends only on its seed, so the
records of a 2-process run equal those of a 1-process run. Finished samples are read back from the
record shards and skipped, so a crashed run resumes where it stopped. When every process is done,
records are gathered on the main process (through ``accelerate.utils.gather_object``, so
per-sample records reach it even without a shared disk), which then adds paired distances and FID
(these need the saved images, so the output folder must be on a shared disk for multi-node runs)
and writes ``records.jsonl`` and ``summary.json``.

Launch: ``xsteer sweep CONFIG --out DIR`` (one process) or
``accelerate launch --multi_gpu --num_processes N -m xsteer sweep CONFIG --out DIR`` (many; the
same command runs N CPU processes on a machine without GPUs; ``torchrun --nproc_per_node N -m
xsteer sweep ...`` works too). ``accelerate launch --cpu`` alone starts a single process.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xsteer.errors import XSteerError
from xsteer.evaluate.harness.benchmarks import Prompt, load_benchmark
from xsteer.evaluate.harness.config import SweepConfig
from xsteer.evaluate.harness.environment import environment
from xsteer.evaluate.harness.generation import PipelineRunner, resolve_device
from xsteer.evaluate.harness.judges import Judge, VideoJudge, build_judge
from xsteer.evaluate.harness.methods import Method, Setting, Unsteered, build_methods
from xsteer.evaluate.harness.records import RecordStore, sample_key, write_records
from xsteer.evaluate.harness.summary import summarize
from xsteer.io import atomic_write_json
from xsteer.pipelines.generate import load_pipeline


@dataclass
class Sample:
    n: int
    prompt: Prompt
    seed: int

    def key(self, method: str, setting: Setting) -> str:
        return sample_key(self.prompt.benchmark, self.prompt.id, self.seed, method, *setting)


@dataclass
class WorkUnit:
    index: int
    method: Method
    setting: Setting
    samples: list[Sample] = field(default_factory=list)

    def keys(self) -> list[str]:
        return [s.key(self.method.name, self.setting) for s in self.samples]


def sample_seeds(p: Prompt, cfg: SweepConfig) -> list[int]:
    """Seeds of one prompt: the config's list, else the prompt's own seed (or ``default_seed``)
    and the next ``images_per_prompt - 1`` integers."""
    if cfg.seeds is not None:
        return [int(s) for s in cfg.seeds]
    base = p.seed if p.seed is not None and "seed" in cfg.prompt_settings else cfg.default_seed
    return [base + k for k in range(cfg.images_per_prompt)]


def pinned(p: Prompt, cfg: SweepConfig) -> tuple[float | None, int | None, int | None]:
    """(guidance, height, width) the benchmark pins for this prompt and the config honours."""
    g = p.guidance if "guidance" in cfg.prompt_settings else None
    size = "size" in cfg.prompt_settings
    return g, (p.height if size else None), (p.width if size else None)


def plan(benchmarks: Sequence[Sequence[Prompt]], methods: Sequence[Method],
         cfg: SweepConfig) -> list[WorkUnit]:
    """Every (benchmark, method setting, batch) in a fixed order; batches never mix guidance
    or image sizes, since one pipeline call takes one of each."""
    units: list[WorkUnit] = []
    n = 0
    for prompts in benchmarks:
        for m in methods:
            for setting in m.settings():
                batch: list[Sample] = []
                shape: tuple[Any, ...] | None = None
                for p in prompts:
                    for seed in sample_seeds(p, cfg):
                        s_shape = pinned(p, cfg)
                        if batch and (len(batch) >= cfg.batch_size or s_shape != shape):
                            units.append(WorkUnit(len(units), m, setting, batch))
                            batch = []
                        batch.append(Sample(n, p, seed))
                        shape = s_shape
                        n += 1
                if batch:
                    units.append(WorkUnit(len(units), m, setting, batch))
    return units


class _Dist:
    """This process's place in an accelerate launch (or a lone process)."""

    def __init__(self) -> None:
        self.state: Any = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch
            from accelerate import PartialState

            # without cpu=True accelerate treats a GPU-less torchrun launch as one process
            self.state = PartialState(cpu=not torch.cuda.is_available())
        self.rank = self.state.process_index if self.state else 0
        self.world = self.state.num_processes if self.state else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str) -> str:
        if self.state is not None and requested == "auto":
            return str(self.state.device)
        return resolve_device(requested)

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def gather(self, items: list[Any]) -> list[Any]:
        if self.state is None:
            return items
        from accelerate.utils import gather_object

        return list(gather_object(items))


def _save_image(out_dir: Path, rel: str, img: Any, clip: Sequence[Any] | None = None) -> None:
    """The still as ``rel`` (PNG); a clip's frames also as an animated GIF beside it."""
    path = out_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)
    if clip is not None:
        tmp = path.with_suffix(".tmp.gif")
        clip[0].save(tmp, format="GIF", save_all=True, append_images=list(clip[1:]),
                     duration=125, loop=0)
        os.replace(tmp, path.with_suffix(".gif"))


def _image_rel(u: WorkUnit, s: Sample) -> str:
    mode, strength = u.setting
    safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in s.prompt.id)
    return (f"images/{s.prompt.benchmark}/{u.method.name}/{mode}-{strength:g}/"
            f"{safe_id}-{s.seed}.png")


class Sweep:
    """One sweep: ``Sweep(cfg, out_dir).run()``. Re-running on the same folder resumes it."""

    def __init__(self, cfg: SweepConfig, out_dir: str | os.PathLike[str], *,
                 trust_remote_code: bool = False, allow_callables: bool = False,
                 clip_scorer: Any = None) -> None:
        cfg.check_trust(trust_remote_code, allow_callables)  # before anything runs or is written
        self.cfg = cfg
        # an injected ``score(images, texts)`` model replaces metrics.clip's ClipScorer
        self.clip_scorer = clip_scorer
        self.out = Path(out_dir)
        self.store = RecordStore(self.out)
        self.dist = _Dist()
        self.judges: list[Judge] = []

    # -- setup ----------------------------------------------------------------------------------
    def _check_out_dir(self) -> None:
        meta = self.out / "config.json"
        if meta.is_file():
            try:
                old = json.loads(meta.read_text(encoding="utf-8")).get("digest")
            except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
                raise XSteerError(f"{meta} is not a sweep's config record (not the JSON object "
                                  "`xsteer sweep` writes); use a new --out folder") from None
            if old != self.cfg.digest():
                raise XSteerError(f"{self.out} holds records of another config (digest {old}, "
                                  f"this one {self.cfg.digest()}); use a new --out folder")
        elif self.dist.is_main:
            atomic_write_json(meta, {"digest": self.cfg.digest(), "config": self.cfg.to_dict()})

    def _benchmarks(self) -> list[list[Prompt]]:
        out = []
        for spec in self.cfg.benchmarks:
            spec = dict(spec)
            path = spec.pop("path", None)
            out.append(load_benchmark(self.cfg.path(path) if path else None, **spec))
        return out

    def _judges(self, video: bool) -> list[Judge]:
        specs = []
        for j in self.cfg.spec.judges:
            updates: dict[str, Any] = {}
            for key in ("path", "prompts"):  # config-relative, ${XSTEER_CACHE}, ~
                if getattr(j, key, None) is not None:
                    updates[key] = str(self.cfg.path(getattr(j, key)))
            if j.kind in ("q16", "clip-category") and j.device is None:
                updates["device"] = self.dist.device(self.cfg.device)  # this process's GPU
            specs.append(j.model_copy(update=updates))
        judges = [build_judge(j) for j in specs]
        if video:  # image judges read clips frame by frame
            judges = [j if isinstance(j, VideoJudge) else VideoJudge(j) for j in judges]
        names = [j.name for j in judges]
        if len(set(names)) != len(names):
            raise XSteerError(f"judges need distinct names, got {names}")
        return judges

    def setup(self) -> tuple[PipelineRunner, list[Method], list[WorkUnit]]:
        cfg = self.cfg
        # everything the config names is loaded and checked before the first write to --out
        methods = build_methods(cfg.spec.methods, cfg.path, cfg.strengths)
        benchmarks = self._benchmarks()
        local = cfg.path(cfg.pipeline)  # a folder next to the config, or an alias / HF id
        spec = str(local) if local.is_dir() else cfg.pipeline
        pipe = load_pipeline(spec, dtype=cfg.dtype, device=self.dist.device(cfg.device),
                             safety_checker=False, **cfg.pipeline_kwargs)
        g = cfg.generation
        gen = PipelineRunner(pipe, steps=int(g["steps"]), guidance=float(g["guidance"]),
                        height=g["height"], width=g["width"], call_kwargs=dict(cfg.call_kwargs),
                        name=cfg.pipeline)
        self.judges = self._judges(gen.video)
        if not any(isinstance(m, Unsteered) for m in methods):
            methods.insert(0, Unsteered("none"))  # the reference for distances and grids
        for m in methods:
            m.setup(gen)
        units = plan(benchmarks, methods, cfg)
        self.out.mkdir(parents=True, exist_ok=True)
        self.dist.barrier()
        self._check_out_dir()
        return gen, methods, units

    # -- the work -------------------------------------------------------------------------------
    def _run_unit(self, u: WorkUnit, gen: PipelineRunner, judges: list[Judge],
                  clip: Any) -> list[dict[str, Any]]:
        prompts = [s.prompt.prompt for s in u.samples]
        guidance, height, width = pinned(u.samples[0].prompt, self.cfg)
        t0 = time.perf_counter()
        cond, info = u.method.conditioning(gen, prompts, u.setting)
        outs = gen.generate(cond, [s.seed for s in u.samples], guidance=guidance,
                            height=height, width=width)
        t_gen = (time.perf_counter() - t0) / len(outs)
        stills = [o[len(o) // 2] if gen.video else o for o in outs]  # a clip's middle frame
        verdicts: dict[str, list[Any]] = {}
        t_judge: dict[str, float] = {}
        for j in judges:
            t1 = time.perf_counter()
            verdicts[j.name] = j.judge(outs, prompts)
            for v, twin in zip(verdicts[j.name], j.twin_drawn(
                    verdicts[j.name], [s.prompt.categories for s in u.samples]), strict=True):
                if twin is not None:
                    v.detail["twin"] = bool(twin)
            t_judge[j.name] = (time.perf_counter() - t1) / len(outs)
        t2 = time.perf_counter()
        scores = clip.score(stills, prompts) if clip is not None else [None] * len(outs)
        rests = self._clip_rest(clip, stills, u.samples)
        t_clip = (time.perf_counter() - t2) / len(outs)
        mode, strength = u.setting
        recs = []
        for i, s in enumerate(u.samples):
            rel = _image_rel(u, s)
            if self.cfg.save_images:
                _save_image(self.out, rel, stills[i], outs[i] if gen.video else None)
            rec: dict[str, Any] = {
                "key": s.key(u.method.name, u.setting), "n": s.n,
                "benchmark": s.prompt.benchmark, "prompt_id": s.prompt.id,
                "prompt": s.prompt.prompt, "categories": list(s.prompt.categories),
                "seed": s.seed, "guidance": gen.guidance if guidance is None else guidance,
                "height": height or gen.height, "width": width or gen.width,
                "method": u.method.name, "method_kind": u.method.kind, "mode": mode,
                "strength": strength,
                "judges": {name: v[i].to_dict() for name, v in verdicts.items()},
                "clip_score": scores[i],
                **({"clip_rest": rests[i]} if rests[i] is not None else {}),
                "image": rel if self.cfg.save_images else None,
                "info": {k: v[i] for k, v in info.items()},
                "timing": {"generate_s": t_gen, "judge_s": t_judge, "clip_s": t_clip},
                "rank": self.dist.rank,
            }
            recs.append(rec)
        return recs

    def _clip_rest(self, clip: Any, stills: Sequence[Any],
                   samples: Sequence[Sample]) -> list[float | None]:
        """CLIP score of each unsafe-prompt sample against the rest of its prompt (its safe
        twin, else the prompt without its unsafe terms: `xsteer.evaluate.harness.keep`)."""
        from xsteer.evaluate.harness.keep import DEFAULT_UNSAFE_TERMS, rest_prompt, twin_of

        out: list[float | None] = [None] * len(samples)
        idx = [i for i, s in enumerate(samples) if s.prompt.categories]
        if clip is None or not idx:
            return out
        terms = (self.cfg.metrics.get("clip") or {}).get("unsafe_terms", DEFAULT_UNSAFE_TERMS)
        texts = [rest_prompt(samples[i].prompt.prompt, twin_of(samples[i].prompt.meta), terms)
                 for i in idx]
        for i, v in zip(idx, clip.score([stills[i] for i in idx], texts), strict=True):
            out[i] = float(v)
        return out

    def run(self, progress: bool = True,
            on_unit: Callable[[WorkUnit], None] | None = None) -> list[dict[str, Any]]:
        """Run (or resume) the sweep; returns the summary rows on the main process."""
        from tqdm.auto import tqdm

        gen, methods, units = self.setup()
        judges = self.judges
        clip = self.clip_scorer
        clip_cfg = self.cfg.metrics.get("clip")
        if clip_cfg and clip is None:
            from xsteer.evaluate.metrics import ClipScorer

            clip = ClipScorer(str(clip_cfg.get("model", "openai/clip-vit-large-patch14")),
                              self.dist.device(self.cfg.device))
        done = set(self.store.read_all())
        mine = [u for u in units if u.index % self.dist.world == self.dist.rank]
        todo = [u for u in mine if not set(u.keys()) <= done]
        bar = tqdm(total=sum(len(u.samples) for u in mine), desc=f"eval[{self.dist.rank}]",
                   disable=not (progress and self.dist.is_main), initial=sum(
                       len(u.samples) for u in mine if set(u.keys()) <= done))
        for u in todo:
            self.store.append(self.dist.rank, self._run_unit(u, gen, judges, clip))
            bar.update(len(u.samples))
            if on_unit is not None:
                on_unit(u)
        bar.close()
        self.dist.barrier()
        # every process sends its shard (records of earlier runs included) to the main process
        shard = [r for r in self.store.read_all().values() if r.get("rank") == self.dist.rank] \
            if self.dist.world > 1 else []
        gathered = self.dist.gather(shard)
        if not self.dist.is_main:
            self.dist.barrier()
            return []
        rows = self.finalize(units, methods, judges, gen, gathered, progress=progress)
        self.dist.barrier()
        return rows

    # -- main process: merge, paired metrics, FID, summary --------------------------------------
    def finalize(self, units: list[WorkUnit], methods: list[Method], judges: list[Judge],
                 gen: PipelineRunner, gathered: list[dict[str, Any]] | None = None,
                 progress: bool = False) -> list[dict[str, Any]]:
        from xsteer.evaluate.harness.postprocess import add_distances, compute_fids

        by_key = self.store.read_all()
        for r in gathered or []:
            by_key.setdefault(r["key"], r)
        wanted = [k for u in units for k in u.keys()]
        missing = [k for k in wanted if k not in by_key]
        if missing:
            raise XSteerError(f"{len(missing)} samples have no record (first: {missing[0]}); "
                              "run the sweep again to finish them")
        records = sorted((by_key[k] for k in wanted), key=lambda r: r["n"])
        metrics = self.cfg.metrics
        if metrics.get("distance") and self.cfg.save_images:
            add_distances(records, self.out, dict(metrics["distance"]), progress)
        fids: dict[tuple[str, str, str, float], float] = {}
        if metrics.get("fid") and self.cfg.save_images:
            fids = compute_fids(records, self.out, dict(metrics["fid"]), self.cfg, progress)
        write_records(self.out / "records.jsonl", records)
        rows = summarize(records, fids)
        atomic_write_json(self.out / "summary.json", {
            "name": self.cfg.name, "digest": self.cfg.digest(), "rows": rows,
            "fid": [{"setting": list(k), "fid": v} for k, v in fids.items()],
            "generation": gen.settings(),
            "judges": {j.name: j.settings() for j in judges},
            "methods": {m.name: m.describe() for m in methods},
            "metrics": _metric_settings(metrics),
            "world_size": self.dist.world,
            "environment": environment(),
        })
        return rows


def _metric_settings(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in metrics.items()}
    if "clip" in out:
        out["clip"] = {**dict(out["clip"]),
                       "scale": "clip_score = torchmetrics 100*max(cos,0); clip_cos = clip_score/100"}
    return out
