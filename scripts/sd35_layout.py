"""The tensor layout of SD3.5 Medium's model files, as ComfyUI detects them: names, shapes and how
each tensor's random values are drawn (scripts/make_sd35_fixtures.py writes the files). Pure
Python: no torch needed to read it."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class T:
    """One tensor: name, shape, and how its values are drawn."""

    name: str
    shape: tuple[int, ...]
    init: str = "normal"  # "normal" (mean 0, `std`), "ones", "zeros"
    std: float = 0.0

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def weight(name: str, *shape: int) -> T:
    """A linear/conv weight: N(0, 1/fan_in), which keeps activations at unit scale."""
    return T(name, shape, "normal", 1.0 / math.sqrt(math.prod(shape[1:])))


def embedding(name: str, *shape: int, std: float = 0.02) -> T:
    return T(name, shape, "normal", std)


def bias(name: str, n: int) -> T:
    return T(name, (n,), "zeros")


def norm(name: str, n: int, with_bias: bool = True) -> list[T]:
    out = [T(f"{name}.weight", (n,), "ones")]
    if with_bias:
        out.append(bias(f"{name}.bias", n))
    return out


def linear(name: str, n_out: int, n_in: int, with_bias: bool = True) -> list[T]:
    out = [weight(f"{name}.weight", n_out, n_in)]
    if with_bias:
        out.append(bias(f"{name}.bias", n_out))
    return out


def conv(name: str, n_out: int, n_in: int, k: int) -> list[T]:
    return [weight(f"{name}.weight", n_out, n_in, k, k), bias(f"{name}.bias", n_out)]


def clip_text_model(
    hidden: int, layers: int, ffn: int, vocab: int = 49408, positions: int = 77
) -> list[T]:
    """A Hugging Face `CLIPTextModel` state dict plus `text_projection` (as ComfyUI's files have)."""
    p = "text_model."
    out = [
        embedding(f"{p}embeddings.token_embedding.weight", vocab, hidden),
        embedding(f"{p}embeddings.position_embedding.weight", positions, hidden, std=0.01),
    ]
    for i in range(layers):
        b = f"{p}encoder.layers.{i}."
        out += norm(b + "layer_norm1", hidden)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out += linear(f"{b}self_attn.{proj}", hidden, hidden)
        out += norm(b + "layer_norm2", hidden)
        out += linear(b + "mlp.fc1", ffn, hidden)
        out += linear(b + "mlp.fc2", hidden, ffn)
    out += norm(p + "final_layer_norm", hidden)
    out.append(weight("text_projection.weight", hidden, hidden))
    return out


def t5_encoder(
    d_model: int = 4096,
    d_ff: int = 10240,
    layers: int = 24,
    heads: int = 64,
    vocab: int = 32128,
    buckets: int = 32,
) -> list[T]:
    """A Hugging Face T5 v1.1 encoder (gated-GELU, no biases, RMS norms without bias)."""
    out = [embedding("shared.weight", vocab, d_model, std=1.0)]
    for i in range(layers):
        b = f"encoder.block.{i}.layer."
        for proj in ("q", "k", "v", "o"):
            out.append(weight(f"{b}0.SelfAttention.{proj}.weight", d_model, d_model))
        if i == 0:
            out.append(
                embedding(
                    f"{b}0.SelfAttention.relative_attention_bias.weight", buckets, heads, std=0.1
                )
            )
        out += norm(f"{b}0.layer_norm", d_model, with_bias=False)
        out.append(weight(f"{b}1.DenseReluDense.wi_0.weight", d_ff, d_model))
        out.append(weight(f"{b}1.DenseReluDense.wi_1.weight", d_ff, d_model))
        out.append(weight(f"{b}1.DenseReluDense.wo.weight", d_model, d_ff))
        out += norm(f"{b}1.layer_norm", d_model, with_bias=False)
    out += norm("encoder.final_layer_norm", d_model, with_bias=False)
    return out


def mmdit(
    prefix: str,
    depth: int,
    patch: int = 2,
    in_channels: int = 16,
    pooled: int = 2048,
    context: int = 4096,
    pos_embed_max: int = 384,
    self_attn_layers: tuple[int, ...] = (0,),
    freq_dim: int = 256,
) -> list[T]:
    """An SD3.5-Medium-style MMDiT-X. ComfyUI reads: width = x_embedder rows, depth = width / 64,
    patch size and latent channels from x_embedder, pooled width from y_embedder, context width
    from context_embedder, `qk_norm: rms` from ln_q, dual attention layers from `attn2` keys."""
    h = 64 * depth
    p = prefix
    out = [
        embedding(f"{p}pos_embed", 1, pos_embed_max * pos_embed_max, h),
        *conv(f"{p}x_embedder.proj", h, in_channels, patch),
        *linear(f"{p}t_embedder.mlp.0", h, freq_dim),
        *linear(f"{p}t_embedder.mlp.2", h, h),
        *linear(f"{p}y_embedder.mlp.0", h, pooled),
        *linear(f"{p}y_embedder.mlp.2", h, h),
        *linear(f"{p}context_embedder", h, context),
    ]
    for i in range(depth):
        last = i == depth - 1  # the last context block only produces keys/values ("pre_only")
        for kind in ("context_block", "x_block"):
            b = f"{p}joint_blocks.{i}.{kind}."
            pre_only = last and kind == "context_block"
            dual = kind == "x_block" and i in self_attn_layers
            attns = ("attn", "attn2") if dual else ("attn",)
            for a in attns:
                out += linear(f"{b}{a}.qkv", 3 * h, h)
                if not (pre_only and a == "attn"):
                    out += linear(f"{b}{a}.proj", h, h)
                out += norm(f"{b}{a}.ln_q", 64, with_bias=False)
                out += norm(f"{b}{a}.ln_k", 64, with_bias=False)
            if not pre_only:
                out += linear(f"{b}mlp.fc1", 4 * h, h)
                out += linear(f"{b}mlp.fc2", h, 4 * h)
            n_mod = 2 if pre_only else (9 if dual else 6)
            out += linear(f"{b}adaLN_modulation.1", n_mod * h, h)
    out += linear(f"{p}final_layer.linear", patch * patch * in_channels, h)
    out += linear(f"{p}final_layer.adaLN_modulation.1", 2 * h, h)
    return out


def sd3_vae(
    prefix: str,
    ch: int = 128,
    ch_mult: tuple[int, ...] = (1, 2, 4, 4),
    num_res_blocks: int = 2,
    z_channels: int = 16,
) -> list[T]:
    """The SD3 KL autoencoder (LDM Encoder/Decoder layout, 16 latent channels, no quant convs).
    ComfyUI builds it from a fixed config and only reads z_channels from the weights, so it
    cannot be made smaller."""
    out: list[T] = []

    def resnet(name: str, c_in: int, c_out: int) -> None:
        nonlocal out
        out += norm(f"{name}.norm1", c_in)
        out += conv(f"{name}.conv1", c_out, c_in, 3)
        out += norm(f"{name}.norm2", c_out)
        out += conv(f"{name}.conv2", c_out, c_out, 3)
        if c_in != c_out:
            out += conv(f"{name}.nin_shortcut", c_out, c_in, 1)

    def mid(name: str, c: int) -> None:
        nonlocal out
        resnet(f"{name}.block_1", c, c)
        out += norm(f"{name}.attn_1.norm", c)
        for proj in ("q", "k", "v", "proj_out"):
            out += conv(f"{name}.attn_1.{proj}", c, c, 1)
        resnet(f"{name}.block_2", c, c)

    e = f"{prefix}encoder"
    out += conv(f"{e}.conv_in", ch, 3, 3)
    c_in = ch
    for i, m in enumerate(ch_mult):
        c_out = ch * m
        for j in range(num_res_blocks):
            resnet(f"{e}.down.{i}.block.{j}", c_in, c_out)
            c_in = c_out
        if i != len(ch_mult) - 1:
            out += conv(f"{e}.down.{i}.downsample.conv", c_in, c_in, 3)
    mid(f"{e}.mid", c_in)
    out += norm(f"{e}.norm_out", c_in)
    out += conv(f"{e}.conv_out", 2 * z_channels, c_in, 3)

    d = f"{prefix}decoder"
    c_in = ch * ch_mult[-1]
    out += conv(f"{d}.conv_in", c_in, z_channels, 3)
    mid(f"{d}.mid", c_in)
    for i in reversed(range(len(ch_mult))):
        c_out = ch * ch_mult[i]
        for j in range(num_res_blocks + 1):
            resnet(f"{d}.up.{i}.block.{j}", c_in, c_out)
            c_in = c_out
        if i != 0:
            out += conv(f"{d}.up.{i}.upsample.conv", c_in, c_in, 3)
    out += norm(f"{d}.norm_out", c_in)
    out += conv(f"{d}.conv_out", 3, c_in, 3)
    return out
