"""Writing generated images and videos: PNG, GIF + frames (MP4 when imageio-ffmpeg is installed).

Arrays are ``(H, W, C)`` images or ``(F, H, W, C)`` videos with values in ``[0, 1]`` (diffusers'
``output_type="np"``), or already ``uint8``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from xsteer.errors import XSteerError


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Float ``[0, 1]`` (or uint8) pixels to uint8, RGB with 3 channels."""
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return a


def save_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)
    return path


def has_mp4() -> bool:
    """MP4 needs an ffmpeg binary; imageio-ffmpeg ships one."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def save_video(folder: Path, stem: str, frames: np.ndarray, fps: int = 8) -> dict[str, str]:
    """Write ``<stem>.gif``, ``<stem>_frames/frame_XXX.png`` and, if possible, ``<stem>.mp4``."""
    from PIL import Image

    f8 = to_uint8(frames)
    if f8.ndim != 4:
        raise XSteerError(f"a video must be (frames, H, W, C), got shape {f8.shape}")
    folder.mkdir(parents=True, exist_ok=True)
    frame_dir = folder / f"{stem}_frames"
    for i, fr in enumerate(f8):
        save_png(frame_dir / f"frame_{i:03d}.png", fr)
    gif = folder / f"{stem}.gif"
    imgs = [Image.fromarray(fr) for fr in f8]
    imgs[0].save(gif, save_all=True, append_images=imgs[1:], duration=max(1, 1000 // fps), loop=0)
    files = {"gif": str(gif), "frames": str(frame_dir)}
    if has_mp4():  # pragma: no cover - depends on the environment
        import imageio.v3 as iio

        mp4 = folder / f"{stem}.mp4"
        iio.imwrite(mp4, f8, fps=fps, codec="libx264")
        files["mp4"] = str(mp4)
    return files


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4) -> np.ndarray:
    """Concatenate two images ``(H, W, C)`` or videos ``(F, H, W, C)`` along the width, white gap."""
    a, b = to_uint8(left), to_uint8(right)
    if a.shape != b.shape:
        raise XSteerError(f"cannot compare outputs of different shapes {a.shape} and {b.shape}")
    pad = np.full((*a.shape[:-2], gap, a.shape[-1]), 255, dtype=np.uint8)
    return np.concatenate([a, pad, b], axis=-2)


def save_media(folder: Path, stem: str, arr: np.ndarray, fps: int = 8) -> dict[str, str]:
    """Write an image as PNG or a video as GIF + frames (+ MP4); return the written paths."""
    if np.asarray(arr).ndim == 4:
        return save_video(folder, stem, arr, fps)
    return {"png": str(save_png(folder / f"{stem}.png", arr))}
