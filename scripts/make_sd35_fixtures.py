#!/usr/bin/env python3
"""Write random-weight model files that a real ComfyUI detects as SD3.5 Medium.

Dev/test tool: no real weights can be downloaded on CI machines, so this writes files with the
*layout* ComfyUI expects and seeded random *values*. The unchanged SD3.5 Medium graph then runs
end to end on CPU and returns a (noise) image.

    checkpoints/sd3.5_medium.safetensors    tiny MMDiT-X (depth 2) + the full SD3 VAE, fp16
    clip/clip_l.safetensors                 CLIP ViT-L/14 text model, fp16       (~124M params)
    clip/clip_g.safetensors                 OpenCLIP bigG text model, fp16       (~695M params)
    clip/t5xxl_fp8_e4m3fn.safetensors       T5-XXL encoder, float8_e4m3fn        (~4.76B params)

ComfyUI derives the diffusion model's depth, width, patch size, channels, pooled/context widths
from the weight shapes, so the MMDiT can be tiny. It builds the VAE and the three text encoders
from fixed configs, so those must be full size (about 6.6 GB in all).

Run it with the ComfyUI virtualenv's python (it needs torch and numpy; safetensors is only used
to read the result back):

    ~/.cache/comfygen/comfyui-0.3.75/venv/bin/python scripts/make_sd35_fixtures.py \
        [--out DIR] [--link-into BASE_DIR/models]

Properties:
- reproducible: every tensor gets its own numpy PCG64 stream seeded from (seed, file, tensor
  name), and files are written in sorted tensor order, so the same seed and script version give
  the same bytes (the stamp records each file's sha256);
- cached outside the checkout (default ~/.cache/comfygen/sd35-fixtures, or $COMFYGEN_SD35_FIXTURES)
  and idempotent: a valid stamp file (`fixtures.json`) means nothing is rewritten;
- atomic: each file is written to `<name>.partial` and renamed; the stamp is written last;
- low memory: the safetensors header is computed from the specs, then tensor data is streamed in
  fixed-size chunks (peak RSS is a few hundred MB, mostly the torch import);
- concurrent runs serialise on a lock file in the output folder.

The last line printed on stdout is the fixture folder.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sd35_layout import (
    T,
    clip_text_model,
    mmdit,
    sd3_vae,
    t5_encoder,
)

try:
    import numpy as np
    import torch
except ImportError as exc:  # pragma: no cover - depends on the interpreter
    sys.exit(
        f"make_sd35_fixtures.py needs torch and numpy ({exc}). Run it with the ComfyUI virtualenv's "
        "python, e.g. ~/.cache/comfygen/comfyui-0.3.75/venv/bin/python "
        "scripts/make_sd35_fixtures.py (install that ComfyUI with scripts/install_comfyui.py)."
    )

# Bump when the layout or the value generation changes: a different version invalidates the cache.
FIXTURE_VERSION = 1
DEFAULT_SEED = 3535
STAMP = "fixtures.json"
ENV_OUT = "COMFYGEN_SD35_FIXTURES"
CHUNK = 1 << 24  # elements per generated chunk; part of the byte-exact output, do not change

CHECKPOINT = "checkpoints/sd3.5_medium.safetensors"
CLIP_L = "clip/clip_l.safetensors"
CLIP_G = "clip/clip_g.safetensors"
T5XXL = "clip/t5xxl_fp8_e4m3fn.safetensors"

# safetensors dtype tag -> torch dtype
DTYPES = {"F16": torch.float16, "F8_E4M3": torch.float8_e4m3fn}
ITEMSIZE = {"F16": 2, "F8_E4M3": 1}


def default_out_dir() -> Path:
    if os.environ.get(ENV_OUT):
        return Path(os.environ[ENV_OUT])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "comfygen" / "sd35-fixtures"


@dataclass(frozen=True)
class FileSpec:
    rel: str
    dtype: str
    tensors: tuple[T, ...]
    metadata: tuple[tuple[str, str], ...] = ()


def file_specs() -> list[FileSpec]:
    common = (
        ("comfygen.fixture", "random weights for tests; not a usable model"),
        ("comfygen.fixture_version", str(FIXTURE_VERSION)),
    )
    return [
        FileSpec(
            CHECKPOINT,
            "F16",
            tuple(mmdit("model.diffusion_model.", depth=2) + sd3_vae("first_stage_model.")),
            (*common, ("modelspec.architecture", "stable-diffusion-v3.5-medium")),
        ),
        FileSpec(CLIP_L, "F16", tuple(clip_text_model(768, 12, 3072)), common),
        FileSpec(CLIP_G, "F16", tuple(clip_text_model(1280, 32, 5120)), common),
        FileSpec(T5XXL, "F8_E4M3", tuple(t5_encoder()), common),
    ]


# --------------------------------------------------------------------------------------------
# Streaming safetensors writer
# --------------------------------------------------------------------------------------------

_LUTS: dict[tuple[str, float], np.ndarray] = {}


def _normal_lut(dtype: str, std: float) -> np.ndarray:
    """Bit patterns of N(0, std) quantiles: 256 of them for fp8, 65536 for fp16. Indexing the
    table with uniform random bytes samples the (quantised) normal distribution by inverse CDF,
    several times faster than drawing normals and converting them."""
    key = (dtype, std)
    if key not in _LUTS:
        bits = 8 * ITEMSIZE[dtype]
        n = 1 << bits
        p = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        values = (torch.special.ndtri(p) * std).to(DTYPES[dtype])
        raw = values.view(torch.uint8 if bits == 8 else torch.int16).numpy()
        _LUTS[key] = raw.view(np.uint8 if bits == 8 else np.uint16).copy()
    return _LUTS[key]


def _constant_bytes(dtype: str, value: float) -> bytes:
    return (
        torch.tensor([value], dtype=torch.float32)
        .to(DTYPES[dtype])
        .view(torch.uint8)
        .numpy()
        .tobytes()
    )


def _tensor_chunks(t: T, dtype: str, seed: int, rel: str) -> Iterator[bytes | memoryview]:
    if t.init in ("ones", "zeros"):
        one = _constant_bytes(dtype, 1.0 if t.init == "ones" else 0.0)
        for start in range(0, t.numel, CHUNK):
            yield one * min(CHUNK, t.numel - start)
        return
    lut = _normal_lut(dtype, t.std)
    # One independent stream per tensor: values do not depend on which other tensors exist.
    ss = np.random.SeedSequence([seed, zlib.crc32(rel.encode()), zlib.crc32(t.name.encode())])
    rng = np.random.Generator(np.random.PCG64(ss))
    index_dtype = np.uint8 if ITEMSIZE[dtype] == 1 else np.uint16
    for start in range(0, t.numel, CHUNK):
        n = min(CHUNK, t.numel - start)
        idx = np.frombuffer(rng.bytes(n * ITEMSIZE[dtype]), dtype=index_dtype)
        yield memoryview(lut[idx]).cast("B")


def header_bytes(spec: FileSpec) -> bytes:
    header: dict[str, object] = {"__metadata__": dict(spec.metadata)}
    offset = 0
    for t in sorted(spec.tensors, key=lambda t: t.name):
        size = t.numel * ITEMSIZE[spec.dtype]
        header[t.name] = {
            "dtype": spec.dtype,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":"), sort_keys=False).encode()
    raw += b" " * (-len(raw) % 8)  # pad so tensor data starts 8-byte aligned
    return len(raw).to_bytes(8, "little") + raw


def file_size(spec: FileSpec) -> int:
    return len(header_bytes(spec)) + sum(t.numel for t in spec.tensors) * ITEMSIZE[spec.dtype]


def write_file(spec: FileSpec, path: Path, seed: int) -> str:
    """Write one safetensors file atomically; return its sha256."""
    names = [t.name for t in spec.tensors]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate tensor names in {spec.rel}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as f:
        head = header_bytes(spec)
        f.write(head)
        digest.update(head)
        for t in sorted(spec.tensors, key=lambda t: t.name):
            for chunk in _tensor_chunks(t, spec.dtype, seed, spec.rel):
                f.write(chunk)
                digest.update(chunk)
        f.flush()
        os.fsync(f.fileno())
    if partial.stat().st_size != file_size(spec):
        raise RuntimeError(
            f"{partial}: wrote {partial.stat().st_size} bytes, expected {file_size(spec)}"
        )
    os.replace(partial, path)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Cache folder: stamp, validation, linking
# --------------------------------------------------------------------------------------------


def expected_stamp_core(seed: int) -> dict[str, object]:
    return {"version": FIXTURE_VERSION, "seed": seed, "chunk": CHUNK}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    return h.hexdigest()


def check(out: Path, seed: int, verify_hashes: bool = False) -> str | None:
    """None if `out` holds a complete fixture set for this version and seed, else the reason."""
    try:
        stamp = json.loads((out / STAMP).read_text())
    except (OSError, ValueError):
        return "no valid stamp"
    for k, v in expected_stamp_core(seed).items():
        if stamp.get(k) != v:
            return f"stamp has {k}={stamp.get(k)!r}, want {v!r}"
    for spec in file_specs():
        rec = stamp.get("files", {}).get(spec.rel)
        path = out / spec.rel
        if rec is None or not path.is_file():
            return f"{spec.rel} missing"
        if path.stat().st_size != file_size(spec) or rec.get("bytes") != file_size(spec):
            return f"{spec.rel} has the wrong size"
        with open(path, "rb") as f:
            if f.read(len(header_bytes(spec))) != header_bytes(spec):
                return f"{spec.rel} has a different header"
        if verify_hashes and sha256_file(path) != rec.get("sha256"):
            return f"{spec.rel} content differs from its recorded sha256"
    return None


def make(out: Path, seed: int, force: bool = False, log=print) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent run waits, then finds the stamp valid
        reason = "forced" if force else check(out, seed)
        if reason is None:
            log(f"fixtures up to date in {out}")
            return json.loads((out / STAMP).read_text())
        log(f"writing SD3.5 fixtures to {out} ({reason})")
        (out / STAMP).unlink(missing_ok=True)
        started = time.monotonic()
        files: dict[str, object] = {}
        for spec in file_specs():
            t0 = time.monotonic()
            sha = write_file(spec, out / spec.rel, seed)
            params = sum(t.numel for t in spec.tensors)
            files[spec.rel] = {
                "bytes": file_size(spec),
                "sha256": sha,
                "params": params,
                "tensors": len(spec.tensors),
                "dtype": spec.dtype,
            }
            log(
                f"  {spec.rel}: {params / 1e6:,.1f}M params, {file_size(spec) / 1e9:.2f} GB, "
                f"{time.monotonic() - t0:.1f}s"
            )
        stamp = {
            **expected_stamp_core(seed),
            "files": files,
            "seconds": round(time.monotonic() - started, 1),
            "torch": torch.__version__,
            "numpy": np.__version__,
        }
        tmp = out / (STAMP + ".partial")
        tmp.write_text(json.dumps(stamp, indent=2) + "\n")
        os.replace(tmp, out / STAMP)
        log(f"done in {stamp['seconds']}s, {sum(f['bytes'] for f in files.values()) / 1e9:.2f} GB")
        return stamp


def link_into(out: Path, models_dir: Path, mode: str = "symlink", log=print) -> None:
    """Make `models_dir/<folder>/<file>` point at the fixtures (symlink, or hardlink when asked;
    a hardlink falls back to a symlink across file systems). Existing links are replaced; an
    unrelated regular file is left alone and reported."""
    for spec in file_specs():
        src = (out / spec.rel).resolve()
        dst = models_dir / spec.rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink() or (dst.exists() and os.path.samefile(dst, src)):
            dst.unlink()
        elif dst.exists():
            raise FileExistsError(f"{dst} exists and is not a fixture link; remove it first")
        if mode == "hardlink":
            try:
                os.link(src, dst)
                continue
            except OSError as exc:
                log(f"  hardlink failed ({exc}); symlinking {dst}")
        dst.symlink_to(src)
    log(f"linked fixtures into {models_dir}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"fixture folder (default ${ENV_OUT} or ~/.cache/comfygen/sd35-fixtures)",
    )
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--force", action="store_true", help="rewrite even if the stamp is valid")
    ap.add_argument(
        "--verify",
        action="store_true",
        help="only check the folder (sizes, headers and full sha256); exit 1 if invalid",
    )
    ap.add_argument(
        "--link-into",
        type=Path,
        metavar="MODELS_DIR",
        help="also link the files into a ComfyUI models dir (BASE_DIR/models)",
    )
    ap.add_argument("--link-mode", choices=("symlink", "hardlink"), default="symlink")
    args = ap.parse_args(argv)
    out = (args.out or default_out_dir()).expanduser().resolve()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.verify:
        reason = check(out, args.seed, verify_hashes=True)
        log(f"{out}: {'valid' if reason is None else 'INVALID: ' + reason}")
        print(out)
        return 0 if reason is None else 1
    make(out, args.seed, force=args.force, log=log)
    if args.link_into:
        link_into(out, args.link_into.expanduser().resolve(), args.link_mode, log=log)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
