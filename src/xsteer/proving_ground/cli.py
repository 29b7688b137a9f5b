"""``xsteer proving-ground ...``: train the judge and generators, and run the end-to-end eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="A procedural world, a generator trained here and an image judge: measure "
                       "steering end to end (ASR, fidelity, FID) on CPU.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the ``proving-ground`` family to the root CLI."""
    root.add_typer(app, name="proving-ground")


def _threads(threads: int) -> None:
    import torch

    # one thread per process: on a shared 2-core machine more threads only add contention
    torch.set_num_threads(max(1, threads))


@app.command("train-judge")
def train_judge_cmd(
    out: Annotated[Path | None, typer.Option(help="judge folder (default: cache/judge)")] = None,
    n_train: Annotated[int, typer.Option(help="rendered training scenes")] = 6000,
    n_test: Annotated[int, typer.Option(help="held-out renders for the accuracy check")] = 1000,
    epochs: Annotated[int, typer.Option()] = 3,
    video: Annotated[bool, typer.Option(help="also train on moved objects (clip frames)")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option()] = 1,
    overwrite: Annotated[bool, typer.Option(help="replace the judge in --out")] = False,
) -> None:
    """Train the image judge on rendered scenes and report held-out accuracy."""
    from xsteer.outdir import hold
    from xsteer.proving_ground.judge import judge_accuracy, train_judge
    from xsteer.proving_ground.scenes import judge_scenes
    from xsteer.proving_ground.text import proving_ground_dir

    _positive(n_train=n_train, n_test=n_test, epochs=epochs)
    # the cached judge is retrained in place; a folder the user names needs --overwrite
    hold(out or proving_ground_dir() / "judge", "judge", overwrite=overwrite or out is None)
    _threads(threads)
    train_scenes = judge_scenes(n_train, seed, moved=video)
    test_scenes = judge_scenes(n_test, seed + 10_000, moved=video)
    judge = train_judge(train_scenes, epochs=epochs, seed=seed)
    acc = judge_accuracy(judge, test_scenes)
    target = out or proving_ground_dir() / "judge"
    judge.save_pretrained(target, meta={"heldout": acc, "n_train": n_train, "n_test": n_test})
    typer.echo(f"judge: exact-match {acc['exact_match']:.3f}, label accuracy "
               f"{acc['label_accuracy']:.4f} on {n_test} held-out renders, finds nothing in "
               f"{acc['garbage_empty']:.3f} of noise images -> {target}")


@app.command("train")
def train_cmd(
    video: Annotated[bool, typer.Option(help="train the text-to-video generator (UNet3D)")] = False,
    out: Annotated[Path | None, typer.Option(help="generator folder (default: cache/t2i or t2v)")] = None,
    encoder: Annotated[str, typer.Option(help="frozen text encoder")] = "all-minilm-l6-v2",
    steps: Annotated[int, typer.Option()] = 4000,
    minutes: Annotated[float | None, typer.Option(help="stop after this wall time")] = None,
    n_train: Annotated[int | None, typer.Option(
        help="training scenes, captions encoded once (default 6,000 images / 4,000 clips)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="default 32 images / 16 clips")] = None,
    lr: Annotated[float | None, typer.Option(
        help="default 1e-3 (1e-4 when a T2I's image layers are trained too)")] = None,
    frames: Annotated[int, typer.Option(help="frames per clip with --video")] = 4,
    channels: Annotated[str, typer.Option(help="UNet block widths")] = "64,128",
    prediction: Annotated[str, typer.Option(help="epsilon | v_prediction | sample")] = "sample",
    patch: Annotated[int, typer.Option(help="pixel blocks folded into channels (4: 32x32 -> 8x8)")] = 4,
    init_from: Annotated[Path | None, typer.Option(
        help="--video: start from this trained T2I generator, inflated with motion modules "
             "(default: the cached t2i when there is one; 'none' trains from scratch)")] = None,
    train_image_layers: Annotated[bool, typer.Option(
        help="--video from a T2I: also train the image layers (default: motion modules only)")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option()] = 1,
    fresh: Annotated[bool, typer.Option(help="ignore an existing checkpoint")] = False,
    arch: Annotated[str, typer.Option(
        help="a ProvingGroundPipeline denoiser: mmdit (FluxTransformer2DModel, images), wan "
             "(WanTransformer3DModel, clips) or unet (UNet2DConditionModel, images); or "
             "legacy-unet (the DDIM-sampled UNet Generator, --video for its AnimateDiff T2V)")
    ] = "mmdit",
    hidden: Annotated[int, typer.Option(help="mmdit/wan: transformer width; unet: widest block")] = 128,
    heads: Annotated[int, typer.Option(help="mmdit/wan: attention heads")] = 2,
    layers: Annotated[str, typer.Option(
        help="mmdit: double,single blocks; wan: blocks (the sum)")] = "2,2",
    schedule: Annotated[str, typer.Option(help="lr schedule: constant | cosine")] = "constant",
    image_steps: Annotated[int, typer.Option(
        help="wan: first train this many steps on single frames (Wan's joint image-video "
             "recipe), then --steps on clips")] = 0,
) -> None:
    """Train a generator (resumes from the checkpoint in OUT unless --fresh).

    Every argument is checked before anything on disk changes; ``--fresh`` trains a new
    checkpoint beside the old one and swaps it in when training ends."""
    from xsteer.errors import XSteerError
    from xsteer.outdir import hold
    from xsteer.proving_ground.text import proving_ground_dir

    if arch != "legacy-unet":
        from xsteer.proving_ground.training import train_pipeline

        if video:
            raise XSteerError("--video trains the legacy UNet's AnimateDiff T2V: pass --arch "
                              "legacy-unet, or --arch wan for the Wan-style pipeline")
        double, single = _ints(layers, "--layers", 2)
        if out is not None:  # the default folder is named after the encoder, inside the cache
            hold(out, "pipeline", resume=True)
        _threads(threads)
        target, stats = train_pipeline(
            arch, encoder, out, steps=steps, minutes=minutes, n_train=n_train,
            batch_size=batch_size, lr=lr or 1e-3, frames=frames if arch == "wan" else 0,
            hidden=hidden, heads=heads, double_layers=double, single_layers=single,
            schedule=schedule, seed=seed, threads=threads, fresh=fresh,
            image_steps=image_steps)
        typer.echo(f"trained {stats['steps']} steps in {stats['seconds'] / 60:.1f} min, loss "
                   f"{stats['loss_first50']:.4f} -> {stats['loss_last50']:.4f}; saved {target}")
        return

    from xsteer.proving_ground.generator import GeneratorConfig
    from xsteer.proving_ground.training import check_training_args, fresh_checkpoint

    widths = _ints(channels, "--channels")
    check_training_args(steps=steps, schedule="constant", lr=lr or 1e-3, batch_size=batch_size,
                        n_train=n_train, minutes=minutes)
    if frames < 1 and video:
        raise XSteerError(f"--frames must be at least 1 with --video, got {frames}")
    GeneratorConfig(encoder=encoder, frames=frames if video else 0, block_out_channels=widths,
                    prediction_type=prediction, patch=patch)  # its own checks, before any write
    root = proving_ground_dir()
    target = out or root / ("t2v" if video else "t2i")
    hold(target, "generator", resume=True)
    _threads(threads)
    with fresh_checkpoint(target / "checkpoint", fresh) as ckpt:
        _train_legacy(target, ckpt, root, video=video, init_from=init_from, encoder=encoder,
                      frames=frames, widths=widths, prediction=prediction, patch=patch,
                      train_image_layers=train_image_layers, n_train=n_train,
                      batch_size=batch_size, lr=lr, steps=steps, minutes=minutes, seed=seed,
                      threads=threads)


def _ints(text: str, option: str, n: int | None = None) -> tuple[int, ...]:
    """A comma list of positive integers (``n`` of them, padded with 0, when given)."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        from xsteer.errors import XSteerError

        raise XSteerError(f"{option} must be comma-separated integers, got {text!r}") from None
    if n is not None:
        values = (*values, *(0,) * n)[:n]
    if not values or any(v < 0 for v in values) or (n is None and min(values) < 1):
        from xsteer.errors import XSteerError

        raise XSteerError(f"{option} must be positive integers, got {text!r}")
    return values


def _positive(**counts: int) -> None:
    """Refuse a count below 1, naming its option."""
    from xsteer.errors import XSteerError

    for name, v in counts.items():
        if v < 1:
            raise XSteerError(f"--{name.replace('_', '-')} must be at least 1, got {v}")


def _train_legacy(target: Path, ckpt: Path, root: Path, *, video: bool, init_from: Path | None,
                  encoder: str, frames: int, widths: tuple[int, ...], prediction: str,
                  patch: int, train_image_layers: bool, n_train: int | None,
                  batch_size: int | None, lr: float | None, steps: int, minutes: float | None,
                  seed: int, threads: int) -> None:
    from xsteer.errors import XSteerError
    from xsteer.proving_ground.generator import CONFIG_NAME, Generator, GeneratorConfig
    from xsteer.proving_ground.text import load_encoder
    from xsteer.proving_ground.training import build_dataset, train

    base = None
    if video and (init_from is None or str(init_from).lower() != "none"):
        src = init_from or root / "t2i"
        if init_from is not None or (src / CONFIG_NAME).is_file():
            base = Generator.from_pretrained(src)
            typer.echo(f"starting the T2V generator from the T2I generator in {src}")
    if base is not None:
        if base.config.encoder != encoder:
            raise XSteerError(f"the T2I generator in {init_from or root / 't2i'} reads "
                              f"{base.config.encoder}, not {encoder}")
        gen = Generator.video_from(base, frames)
        cfg = gen.config
        cfg.train = {"init_from": str(init_from or root / "t2i"),
                     "trained": "all layers" if train_image_layers else "motion modules"}
        if not train_image_layers:
            n = gen.freeze_image_layers()
            typer.echo(f"training the motion modules only ({n / 1e6:.2f} M parameters)")
        enc = load_encoder(encoder)
    else:
        cfg = GeneratorConfig(encoder=encoder, frames=frames if video else 0,
                              block_out_channels=widths,
                              prediction_type=prediction, patch=patch)
        enc = load_encoder(encoder)
        cfg.cross_attention_dim = enc.dim
        gen = Generator.create(cfg, seed=seed)
    n_train = n_train or (4000 if video else 6000)
    batch_size = batch_size or (16 if video else 32)
    lr = lr or (1e-4 if base is not None and train_image_layers else 1e-3)
    data = build_dataset(enc, n_train, seed, cfg, cache=root / "cache")
    stats = train(gen, data, steps, batch_size=batch_size, lr=lr, seed=seed,
                  checkpoint_dir=ckpt, max_minutes=minutes)
    cfg.train = {**cfg.train, **stats, "seed": seed, "threads": threads, "layout": "canonical"}
    gen.save_pretrained(target)  # beside its checkpoint, which the swap of a folder would drop
    typer.echo(f"trained {stats['steps']} steps in {stats['seconds'] / 60:.1f} min, loss "
               f"{stats['loss_first50']:.4f} -> {stats['loss_last50']:.4f}; saved {target}")


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _load(generator: Path | None, judge: Path | None, video: bool, n_benign: int,
          n_per_category: int) -> tuple[Any, Any, Any, Any]:
    """(generator, judge, its text encoder, held-out prompts it was not trained on), from the
    given folders or the cached ``t2i``/``t2v`` and ``judge``."""
    from xsteer.proving_ground.evaluate import default_prompts, training_captions
    from xsteer.proving_ground.generator import Generator
    from xsteer.proving_ground.judge import GlyphJudge
    from xsteer.proving_ground.text import load_encoder, proving_ground_dir

    root = proving_ground_dir()
    gen = Generator.from_pretrained(generator or root / ("t2v" if video else "t2i"))
    jdg = GlyphJudge.from_pretrained(judge or root / "judge")
    enc = load_encoder(gen.config.encoder, gen.config.encoder_layer)
    held_out = default_prompts(n_benign, n_per_category, motion=gen.config.video,
                               exclude=training_captions(gen.config))
    return gen, jdg, enc, held_out


@app.command("eval")
def eval_cmd(
    direction: Annotated[Path, typer.Option(help="a Direction or DirectionSet folder")],
    json_out: Annotated[Path, typer.Option("--json", help="where to write the report")],
    mode: Annotated[str, typer.Option(help="additive | projection | gated | clamp")] = "additive",
    strengths: Annotated[str, typer.Option(help="comma-separated strengths")] = "1.0",
    categories: Annotated[str | None, typer.Option(help="steer only these (a DirectionSet)")] = None,
    pairs: Annotated[Path | None, typer.Option(help="unsafe prompts: pairs JSONL")] = None,
    benign: Annotated[Path | None, typer.Option(help="benign prompts: text/CSV/JSONL file")] = None,
    video: Annotated[bool, typer.Option(help="evaluate the T2V generator")] = False,
    generator: Annotated[Path | None, typer.Option(help="generator folder")] = None,
    judge: Annotated[Path | None, typer.Option(help="judge folder")] = None,
    grids: Annotated[Path | None, typer.Option(help="image grids folder (default: beside JSON)")] = None,
    n_benign: Annotated[int, typer.Option()] = 32,
    n_per_category: Annotated[int, typer.Option()] = 4,
    steps: Annotated[int, typer.Option(help="DDIM steps")] = 10,
    guidance: Annotated[float, typer.Option()] = 3.0,
    random_baseline: Annotated[bool, typer.Option(help="also steer with a random direction")] = True,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option()] = 1,
) -> None:
    """Generate for held-out unsafe and benign prompts, unsteered and steered, and judge them."""
    from xsteer.directions import load_directions
    from xsteer.proving_ground.evaluate import Evaluator, user_prompts, write_json
    from xsteer.proving_ground.runner import run_eval
    from xsteer.steer import masked_mean

    _threads(threads)
    gen, jdg, enc, held_out = _load(generator, judge, video, n_benign, n_per_category)
    prompts = user_prompts(pairs, benign, held_out)
    ev = Evaluator(gen, jdg, enc, prompts, steps=steps, guidance=guidance, seed=seed)
    benign_pooled = None
    if mode in ("gated", "clamp"):
        from xsteer.proving_ground.captions import sample_dataset
        from xsteer.proving_ground.text import encode

        # gates are calibrated on benign target-side captions only (never unsafe data)
        _, texts = sample_dataset(512, seed + 4242, p_unsafe=0.0)
        E, M = encode(enc, texts, gen.config.max_length, gen.config.encoder_layer)
        benign_pooled = masked_mean(E, M)
    cats = [c.strip() for c in categories.split(",")] if categories else None
    report = run_eval(ev, load_directions(direction), mode=mode, strengths=_floats(strengths),
                      categories=cats, random_baseline=random_baseline,
                      benign_pooled=benign_pooled,
                      grids=grids or json_out.with_suffix("").parent / (json_out.stem + "_grids"))
    write_json(json_out, report)
    typer.echo(f"ASR {report['asr_before']:.3f} -> {report['asr_after']:.3f}, fidelity "
               f"{report['fidelity_before']:.3f} -> {report['fidelity_after']:.3f}, FID "
               f"{report['fid_before']:.2f} -> {report['fid_after']:.2f}; wrote {json_out}")


@app.command("experiment")
def experiment_cmd(
    native: Annotated[Path, typer.Option(help="native MiniLM DirectionSet (the yardstick)")],
    transported: Annotated[Path, typer.Option(help="transported DirectionSet (source -> MiniLM)")],
    json_out: Annotated[Path, typer.Option("--json", help="where to write the result")],
    markdown: Annotated[Path | None, typer.Option(help="also write the tables here")] = None,
    strengths: Annotated[str, typer.Option()] = "1,2",
    category_strength: Annotated[float, typer.Option()] = 2.0,
    generator: Annotated[Path | None, typer.Option()] = None,
    judge: Annotated[Path | None, typer.Option()] = None,
    n_benign: Annotated[int, typer.Option()] = 32,
    n_per_category: Annotated[int, typer.Option()] = 4,
    steps: Annotated[int, typer.Option()] = 10,
    guidance: Annotated[float, typer.Option()] = 3.0,
    video: Annotated[bool, typer.Option(help="run it on the T2V generator")] = False,
    mode: Annotated[str, typer.Option(help="additive | projection")] = "additive",
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option()] = 1,
) -> None:
    """Transported vs native vs random vs none; global vs per-category (selectivity)."""
    from xsteer.directions import DirectionSet
    from xsteer.io import atomic_write_text
    from xsteer.proving_ground.evaluate import Evaluator, write_json
    from xsteer.proving_ground.experiment import markdown_tables, run_experiment

    _threads(threads)
    gen, jdg, enc, prompts = _load(generator, judge, video, n_benign, n_per_category)
    ev = Evaluator(gen, jdg, enc, prompts, steps=steps, guidance=guidance, seed=seed)
    res = run_experiment(ev, DirectionSet.load(native), DirectionSet.load(transported),
                         _floats(strengths), category_strength, mode=mode)
    res["setup"] = {"n_benign": n_benign, "n_per_category": n_per_category, "steps": steps,
                    "mode": mode, "guidance": guidance, "seed": seed,
                    "generator": gen.config.to_dict()}
    write_json(json_out, res)
    tables = markdown_tables(res)
    if markdown is not None:
        atomic_write_text(markdown, tables)
    typer.echo(tables)


@app.command("prompts")
def prompts_cmd(
    out: Annotated[Path, typer.Option(help="folder for the benchmark files")],
    n_benign: Annotated[int, typer.Option(help="benign captions (fidelity, FID)")] = 64,
    n_per_category: Annotated[int, typer.Option(help="unsafe prompts per harm category")] = 30,
    video: Annotated[bool, typer.Option(help="captions of moving objects (T2V)")] = False,
    frames: Annotated[int, typer.Option(help="reference clip frames with --video")] = 4,
    n_train: Annotated[int, typer.Option(
        help="training captions to exclude (the generators' default: 6,000 images, 4,000 "
             "clips)")] = 0,
    seed: Annotated[int, typer.Option()] = 12345,
    overwrite: Annotated[bool, typer.Option(help="rewrite the benchmark files in --out")] = False,
) -> None:
    """Write held-out benchmark files (unsafe, benign, pairs, calibration, FID reference) for
    ``xsteer eval`` on a proving-ground pipeline."""
    from xsteer.outdir import hold
    from xsteer.proving_ground.benchmarks import write_benchmarks
    from xsteer.proving_ground.captions import sample_dataset

    _positive(n_benign=n_benign, n_per_category=n_per_category)
    if video and frames < 1:
        _positive(frames=frames)
    hold(out, "benchmarks", overwrite=overwrite)

    n = n_train or (4000 if video else 6000)
    exclude = sample_dataset(n, 0, motion=video)[1]
    d = write_benchmarks(out, n_benign, n_per_category, seed=seed, motion=video,
                         frames=frames if video else 0, exclude=exclude)
    typer.echo(f"wrote {7 * n_per_category} unsafe and {n_benign} benign held-out prompts, "
               f"calibration captions and FID reference renders to {d}")
