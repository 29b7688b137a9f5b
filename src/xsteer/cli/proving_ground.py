"""``xsteer proving-ground ...``: train the judge and the pipelines, and write benchmark files
(steering is then measured by ``xsteer sweep`` like on any pipeline). The work is done by
`xsteer.proving_ground` (`training.train_pipeline`, `judge.train_judge`,
`benchmarks.write_benchmarks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    out: Annotated[Path | None, typer.Option(
        help="pipeline folder (default: cache/proving_ground/ARCH-ENCODER)")] = None,
    encoder: Annotated[str, typer.Option(help="frozen text encoder")] = "all-minilm-l6-v2",
    steps: Annotated[int, typer.Option()] = 4000,
    minutes: Annotated[float | None, typer.Option(
        help="stop after this wall time (a run cut short says so and records it)")] = None,
    n_train: Annotated[int | None, typer.Option(
        help="training scenes, captions encoded once (default 6,000 images / 4,000 clips)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="default 32 images / 16 clips")] = None,
    lr: Annotated[float, typer.Option()] = 1e-3,
    frames: Annotated[int, typer.Option(help="frames per clip (wan)")] = 4,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option()] = 1,
    fresh: Annotated[bool, typer.Option(help="ignore an existing checkpoint")] = False,
    arch: Annotated[str, typer.Option(
        help="the ProvingGroundPipeline denoiser: mmdit (FluxTransformer2DModel, images), wan "
             "(WanTransformer3DModel, clips) or unet (UNet2DConditionModel, images)")
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
    """Train a ProvingGroundPipeline (resumes from its checkpoint unless --fresh).

    Every argument is checked before anything on disk changes; ``--fresh`` trains a new
    checkpoint beside the old one and swaps it in when training ends."""
    from xsteer.outdir import hold
    from xsteer.proving_ground.training import cut_warnings, train_pipeline

    double, single = _ints(layers, "--layers", 2)
    if out is not None:  # the default folder is named after the encoder, inside the cache
        hold(out, "pipeline", resume=True)
    _threads(threads)
    target, stats = train_pipeline(
        arch, encoder, out, steps=steps, minutes=minutes, n_train=n_train,
        batch_size=batch_size, lr=lr, frames=frames if arch == "wan" else 0,
        hidden=hidden, heads=heads, double_layers=double, single_layers=single,
        schedule=schedule, seed=seed, threads=threads, fresh=fresh,
        image_steps=image_steps)
    typer.echo(f"trained {stats['steps']} steps in {stats['seconds'] / 60:.1f} min, loss "
               f"{stats['loss_first50']:.4f} -> {stats['loss_last50']:.4f}; saved {target}")
    for line in cut_warnings(stats, minutes):
        typer.secho(line, err=True, fg="red", bold=True)


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
    ``xsteer sweep`` on a proving-ground pipeline."""
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
