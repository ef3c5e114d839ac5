"""Writes the reference fixtures of tests/HssEe.Models.Tests/Fixtures/ (deterministic).

    /usr/bin/python3 tools/reference/make_fixtures.py [--out DIR] [--only llama,t5_v10,t5_v11,resnet18]

Folders:
    llama/     random LlamaForCausalLM, weights BF16          (tools/reference/llama_ref.py)
    t5_v10/    random T5 v1.0 (relu, tied head), weights F16  (tools/reference/t5_ref.py)
    t5_v11/    random T5 v1.1 (gated-gelu, own lm_head), F16
    resnet18/  torchvision resnet18, weights NOT stored: counter-based generator
               (tools/reference/resnet_gen.py), only config + io + README

Each reference is computed in float32 from the weights *as read back* from the written
model.safetensors (BF16/F16 widened exactly to float32), so a reader that widens the same
way sees exactly the weights the reference used.

Needs torch (1.13 used), torchvision (0.14 used) and numpy; runs on one thread.
"""

import argparse
import json
import math
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import llama_ref  # noqa: E402
import resnet_gen  # noqa: E402
import t5_ref  # noqa: E402
from safetensors_io import load_file, save_file  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "tests", "HssEe.Models.Tests", "Fixtures")
GEN = "tools/reference/make_fixtures.py"

SEED_LLAMA = 20240601
SEED_T5_V10 = 20240610
SEED_T5_V11 = 20240611


def write_json(path, obj):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_text(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def random_weights(model, norm_suffixes, bias_table_suffix=None):
    """Random float32 weights in state_dict order (uses the global torch RNG):
    Linear [out, in]: N(0, 1/in); Embedding / relative bias table: N(0, 1);
    norm weights: 1 + 0.1 N(0, 1)."""
    sd = {}
    for name, p in model.state_dict().items():
        shape = tuple(p.shape)
        if any(name.endswith(s) for s in norm_suffixes):
            w = 1.0 + 0.1 * torch.randn(shape)
        elif len(shape) == 2 and (name.endswith("embed_tokens.weight") or name == "shared.weight"
                                  or (bias_table_suffix and name.endswith(bias_table_suffix))):
            w = torch.randn(shape)
        elif len(shape) == 2:
            w = torch.randn(shape) / math.sqrt(shape[1])
        else:
            raise ValueError("no init rule for %s %s" % (name, shape))
        sd[name] = w.float()
    return sd


def store_and_reload(model, sd, path, dtype, metadata):
    """Write sd with `dtype` to path, read it back widened to float32, load into model."""
    save_file({k: (v.numpy(), dtype) for k, v in sd.items()}, path, metadata=metadata)
    back = load_file(path)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()}, strict=True)
    model.eval()
    return back


def fmt_tensors(path):
    t = load_file(path, widen=False)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
    lines = []
    for k in t:
        lines.append("| `%s` | %s | %s |" % (k, hdr[k]["dtype"], list(hdr[k]["shape"])))
    return "| tensor | dtype | shape |\n| --- | --- | --- |\n" + "\n".join(lines)


def maxabs(x):
    return float(np.abs(np.asarray(x, dtype=np.float64)).max())


# --------------------------------------------------------------------------------------------
def make_llama(out):
    d = os.path.join(out, "llama")
    os.makedirs(d, exist_ok=True)
    cfg = llama_ref.default_config(torch_dtype="bfloat16")
    torch.manual_seed(SEED_LLAMA)
    model = llama_ref.LlamaForCausalLM(cfg)
    sd = random_weights(model, ("layernorm.weight", "norm.weight"))
    store_and_reload(model, sd, os.path.join(d, "model.safetensors"), "BF16", {"format": "pt"})
    input_ids = torch.randint(0, cfg["vocab_size"], (1, 12), dtype=torch.long)
    with torch.no_grad():
        logits, hidden = model(input_ids, return_hidden=True)
    io = {
        "input_ids": (input_ids.numpy(), "I64"),
        "logits": (logits.numpy(), "F32"),
        "hidden_after_layer0": (hidden[0].numpy(), "F32"),
    }
    save_file(io, os.path.join(d, "io.safetensors"), metadata={"generator": GEN})
    write_json(os.path.join(d, "config.json"), cfg)
    stats = dict(logits=maxabs(logits), hidden0=maxabs(hidden[0]))
    write_text(os.path.join(d, "README.md"), f"""# LLaMA reference fixture

Made by `{GEN}` (function `make_llama`), PyTorch {torch.__version__}, one thread,
`torch.manual_seed({SEED_LLAMA})`. The model is `tools/reference/llama_ref.py`, a float32
re-implementation of Hugging Face `LlamaForCausalLM` (RMSNorm in float32 with eps 1e-5,
rotate_half RoPE with theta 10000, grouped-query attention via repeat_kv, scores / sqrt(head_dim),
causal mask, float32 softmax, SwiGLU MLP, final norm, untied lm_head).

Config (`config.json`): vocab 61, hidden 64, intermediate 172, 2 layers, 4 heads, 2 KV heads
(head_dim 16), max positions 128.

Weights: random, drawn in state-dict order from the global torch RNG: Linear weights
(`[out, in]`, including `lm_head`) N(0, 1/in), `model.embed_tokens.weight` N(0, 1), norm weights
1 + 0.1 N(0, 1). Stored as **BF16** (round to nearest even, as torch); the reference was computed
with the BF16 values widened to float32 (bits shifted into the upper half), i.e. exactly what a
reader that widens BF16 sees.

`io.safetensors` (`input_ids` uniform in [0, 61)):

{fmt_tensors(os.path.join(d, "io.safetensors"))}

`hidden_after_layer0` is the residual stream after decoder layer 0 (before layer 1's input norm).
Max |logits| = {stats['logits']:.4f}, max |hidden_after_layer0| = {stats['hidden0']:.4f}.
""")
    return stats


# --------------------------------------------------------------------------------------------
def make_t5(out, variant, folder, seed):
    d = os.path.join(out, folder)
    os.makedirs(d, exist_ok=True)
    cfg = t5_ref.default_config(variant)
    torch.manual_seed(seed)
    model = t5_ref.T5ForConditionalGeneration(cfg)
    sd = random_weights(model, ("layer_norm.weight",), bias_table_suffix="relative_attention_bias.weight")
    store_and_reload(model, sd, os.path.join(d, "model.safetensors"), "F16", {"format": "pt"})
    input_ids = torch.randint(0, cfg["vocab_size"], (1, 10), dtype=torch.long)
    dec_ids = torch.cat([torch.zeros((1, 1), dtype=torch.long),
                         torch.randint(0, cfg["vocab_size"], (1, 5), dtype=torch.long)], dim=1)
    with torch.no_grad():
        enc, logits = model(input_ids, dec_ids)
    io = {
        "input_ids": (input_ids.numpy(), "I64"),
        "decoder_input_ids": (dec_ids.numpy(), "I64"),
        "encoder_output": (enc.numpy(), "F32"),
        "logits": (logits.numpy(), "F32"),
    }
    save_file(io, os.path.join(d, "io.safetensors"), metadata={"generator": GEN})
    write_json(os.path.join(d, "config.json"), cfg)
    stats = dict(logits=maxabs(logits), encoder_output=maxabs(enc))
    if variant == "v1.0":
        ffn = "FFN `wo(relu(wi(x)))`; `tie_word_embeddings: true`: no `lm_head.weight`, logits = " \
              "(decoder output * d_model^-0.5) @ shared^T"
    else:
        ffn = "FFN `wo(gelu_new(wi_0(x)) * wi_1(x))` (gelu_new = tanh approximation); " \
              "`tie_word_embeddings: false`: separate `lm_head.weight`, no rescale"
    names = "\n".join("- `%s` %s" % (k, list(v.shape)) for k, v in sd.items())
    buckets_enc = t5_ref.relative_position_bucket(
        torch.arange(10)[None, :] - torch.arange(10)[:, None], True, 32, 128)
    buckets_dec = t5_ref.relative_position_bucket(
        torch.arange(6)[None, :] - torch.arange(6)[:, None], False, 32, 128)
    write_text(os.path.join(d, "README.md"), f"""# T5 {variant} reference fixture

Made by `{GEN}` (function `make_t5`), PyTorch {torch.__version__}, one thread,
`torch.manual_seed({seed})`. The model is `tools/reference/t5_ref.py`, a float32 re-implementation
of Hugging Face `T5ForConditionalGeneration` in eval mode: T5LayerNorm (RMS, no mean subtraction,
eps 1e-6), attention without 1/sqrt(d_kv) scaling, relative position bias (table in block 0 of
each stack, reused by the other blocks; bidirectional buckets in the encoder, unidirectional in
decoder self-attention; none in cross-attention), decoder causal mask, float32 softmax.
{ffn}.

Config (`config.json`): vocab 64, d_model 64, d_kv 16, 4 heads, d_ff 128, 2 encoder + 2 decoder
blocks, 32 buckets, max distance 128.

Weights: random, drawn in state-dict order (below) from the global torch RNG: Linear weights
`[out, in]` N(0, 1/in) (q included: no T5-specific init), `shared.weight` and the
`relative_attention_bias` tables N(0, 1), layer-norm weights 1 + 0.1 N(0, 1). Stored as **F16**
(IEEE half, round to nearest even); the reference used the F16 values widened to float32
(what `System.Half` -> `float` gives).

`io.safetensors` (`input_ids` uniform in [0, 64); `decoder_input_ids` = 0 (decoder start id)
followed by 5 ids uniform in [0, 64)):

{fmt_tensors(os.path.join(d, "io.safetensors"))}

`encoder_output` is after `encoder.final_layer_norm`. Max |logits| = {stats['logits']:.4f},
max |encoder_output| = {stats['encoder_output']:.4f}.

Relative-position buckets used (row = query i, column = key j, bucket of j - i):
encoder (bidirectional) row 0 = {buckets_enc[0].tolist()}, row 9 = {buckets_enc[9].tolist()};
decoder (unidirectional) row 5 = {buckets_dec[5].tolist()}.

Tensors in `model.safetensors`:

{names}
""")
    return stats


# --------------------------------------------------------------------------------------------
def make_resnet18(out):
    import torchvision

    d = os.path.join(out, "resnet18")
    os.makedirs(d, exist_ok=True)
    model = torchvision.models.resnet18(num_classes=1000)
    gen = resnet_gen.state_dict_for(model)
    missing = model.load_state_dict({k: torch.from_numpy(v) for k, v in gen.items()}, strict=False)
    assert not missing.unexpected_keys
    assert all(k.endswith("num_batches_tracked") for k in missing.missing_keys), missing
    model.eval()

    x224 = torch.from_numpy(resnet_gen.generate_input("input.224", (1, 3, 224, 224)))
    x64 = torch.from_numpy(resnet_gen.generate_input("input.64", (1, 3, 64, 64)))
    captured = {}
    h = model.layer1.register_forward_hook(lambda m, i, o: captured.__setitem__("layer1", o.detach().clone()))
    with torch.no_grad():
        l224 = model(x224)
        captured.clear()
        l64 = model(x64)
    h.remove()
    after1 = captured["layer1"]
    assert tuple(after1.shape) == (1, 64, 16, 16)

    # Per-stage magnitudes (for the README): RMS after each stage for the 224 input.
    stage_rms = []
    with torch.no_grad():
        t = model.maxpool(model.relu(model.bn1(model.conv1(x224))))
        stage_rms.append(("stem", float(t.pow(2).mean().sqrt()), maxabs(t)))
        for nm in ("layer1", "layer2", "layer3", "layer4"):
            t = getattr(model, nm)(t)
            stage_rms.append((nm, float(t.pow(2).mean().sqrt()), maxabs(t)))

    # Largest magnitude over every module output (conv, bn, relu, pool, block, fc) at 224.
    peaks = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: peaks.__setitem__(n, maxabs(o)))
             for n, m in model.named_modules() if n]
    with torch.no_grad():
        model(x224)
    for hk in hooks:
        hk.remove()
    peak_name = max(peaks, key=peaks.get)

    probe_names = ["conv1.weight", "bn1.running_var", "layer4.1.conv2.weight", "fc.bias"]
    probe = np.concatenate([gen[n].reshape(-1)[:4] for n in probe_names]).astype(np.float32)
    io = {
        "logits.224": (l224.numpy(), "F32"),
        "logits.64": (l64.numpy(), "F32"),
        "after_layer1.64": (after1.numpy(), "F32"),
        "probe": (probe, "F32"),
    }
    save_file(io, os.path.join(d, "io.safetensors"), metadata={"generator": GEN})
    cfg = dict(architectures=["ResNetForImageClassification"], model_type="resnet",
               torchvision_model="resnet18", num_classes=1000, num_channels=3,
               embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
               layer_type="basic", hidden_act="relu", downsample_in_first_stage=False,
               batch_norm_eps=1e-5,
               weights="generated (tools/reference/resnet_gen.py); state-dict names are torchvision's")
    write_json(os.path.join(d, "config.json"), cfg)
    sizes = "\n".join("- `%s` %s" % (k, list(v.shape)) for k, v in gen.items())
    probe_txt = "\n".join("- `%s`[0..4) = %s" % (n, ", ".join(repr(float(v)) for v in gen[n].reshape(-1)[:4]))
                          for n in probe_names)
    stats = dict(logits224=maxabs(l224), logits64=maxabs(l64), after_layer1_64=maxabs(after1),
                 stage_rms=stage_rms, peak=(peak_name, peaks[peak_name]),
                 top224=int(l224.argmax()), top64=int(l64.argmax()))
    rms_txt = ", ".join("%s %.3g / %.3g" % s for s in stage_rms)
    peak = peaks[peak_name]
    write_text(os.path.join(d, "README.md"), f"""# ResNet-18 reference fixture (generated weights)

Made by `{GEN}` (function `make_resnet18`), PyTorch {torch.__version__}, torchvision
{torchvision.__version__}, one thread: `torchvision.models.resnet18(num_classes=1000)` in eval
mode (BatchNorm uses the running statistics, eps 1e-5). The 45 MB of weights are **not stored**:
they and the input images come from a counter-based generator that the C# side reproduces
exactly (`tools/reference/resnet_gen.py`). `tools/reference/convert_resnet.py` converts a real
torchvision `.pth` state dict to safetensors with the same names.

## Generator

For a tensor named N (the torchvision state-dict name, as UTF-8 bytes) and element index i
(row-major, 0-based), all arithmetic on unsigned 64-bit integers modulo 2^64:

```
h = 0xcbf29ce484222325                      FNV-1a-64 of the name bytes
for each byte c of N: h = (h ^ c) * 0x100000001b3
z = h + (i + 1) * 0x9E3779B97F4A7C15
z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9    SplitMix64 finaliser
z = (z ^ (z >> 27)) * 0x94D049BB133111EB
z = z ^ (z >> 31)
u = (double)(z >> 11) * 2^-53               float64 in [0, 1), exact
```

Each value is computed in float64 with exactly these expressions (IEEE double, round to nearest
even at every operation; `sqrt(6.0 / fan_in)` is itself a double: divide, then sqrt) and then
rounded once to float32 (`(float)` in C#, round to nearest even):

| tensors | value |
| --- | --- |
| conv weights `[out, in, kh, kw]` and `fc.weight` `[out, in]` | `(2*u - 1) * sqrt(6.0 / fan_in)`, fan_in = in*kh*kw or in_features |
| BatchNorm `weight` | `0.5 + u` |
| BatchNorm `bias` | `0.2 * (2*u - 1)` |
| BatchNorm `running_mean` | `0.1 * (2*u - 1)` |
| BatchNorm `running_var` | `0.5 + u` |
| `fc.bias` | `0.1 * (2*u - 1)` |
| inputs `input.224` [1,3,224,224], `input.64` [1,3,64,64] (names are generator names only) | `2*u - 1` |

BatchNorm tensors are `bn1.*`, `layerK.J.bn1.*`, `layerK.J.bn2.*` and `layerK.0.downsample.1.*`;
conv weights are `conv1.weight`, `layerK.J.conv1/conv2.weight`, `layerK.0.downsample.0.weight`.
`num_batches_tracked` is not generated (unused in eval mode).

Check values (also stored as `probe` in `io.safetensors`, in this order):

{probe_txt}

FNV-1a-64("conv1.weight") = {hex(resnet_gen.fnv1a64("conv1.weight"))}.

## Outputs

{fmt_tensors(os.path.join(d, "io.safetensors"))}

`after_layer1.64` is the output of `layer1` (after its last residual ReLU) for the 64x64 input.
`probe` holds the first 4 generated values of `conv1.weight`, `bn1.running_var`,
`layer4.1.conv2.weight`, `fc.bias` (16 floats).

Magnitudes: max |logits.224| = {stats['logits224']:.4f} (argmax {stats['top224']}),
max |logits.64| = {stats['logits64']:.4f} (argmax {stats['top64']}),
max |after_layer1.64| = {stats['after_layer1_64']:.4f}.
RMS / max |.| of the activations after each stage for the 224 input: {rms_txt}.

Note on magnitudes: with this recipe the activations grow by roughly 2.5-3.5x per stage (the
BatchNorm running statistics do not match the real activation statistics, and every residual
block adds its branch to an unnormalised skip path), so the logits are of order 10^2 rather
than 10^0 (max |logits.224| = {stats['logits224']:.1f}, i.e. a saturated softmax). Nothing
overflows in float32; the largest magnitude of any module output (every conv, BatchNorm, ReLU,
block and fc, 224 input) is {peak:.1f}, at `{peak_name}`, so a fixed-point encoding needs about
{math.ceil(math.log2(peak)) + 1} integer bits (sign included). The recipe was kept as specified.

## Generated tensors

{sizes}
""")
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", default="llama,t5_v10,t5_v11,resnet18")
    args = ap.parse_args()
    torch.set_num_threads(1)
    only = set(args.only.split(","))
    os.makedirs(args.out, exist_ok=True)
    if "llama" in only:
        print("llama", make_llama(args.out))
    if "t5_v10" in only:
        print("t5_v10", make_t5(args.out, "v1.0", "t5_v10", SEED_T5_V10))
    if "t5_v11" in only:
        print("t5_v11", make_t5(args.out, "v1.1", "t5_v11", SEED_T5_V11))
    if "resnet18" in only:
        print("resnet18", make_resnet18(args.out))


if __name__ == "__main__":
    main()
