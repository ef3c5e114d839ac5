"""Counter-based weight generator for the ResNet-18 fixture (reproduced bit for bit in C#).

For a tensor named N (the torchvision state-dict name, UTF-8 bytes) and element index i
(row-major, 0-based), all arithmetic on unsigned 64-bit integers modulo 2^64:

    h = FNV-1a-64(N):  h = 0xcbf29ce484222325; for each byte c: h = (h ^ c) * 0x100000001b3
    z = h + (i + 1) * 0x9E3779B97F4A7C15
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    z = z ^ (z >> 31)
    u = (double)(z >> 11) * 2^-53                          (float64, exact, in [0, 1))

Values are computed in float64 with exactly these expressions (IEEE double, round to
nearest even at every step), then rounded once to float32:

    conv weight [out, in, kh, kw], fc.weight [out, in]:
                     (2*u - 1) * sqrt(6.0 / fan_in)      fan_in = in*kh*kw, or in_features;
                                                         sqrt(6.0 / fan_in) is itself a double
    BatchNorm weight:       0.5 + u
    BatchNorm bias:         0.2 * (2*u - 1)
    BatchNorm running_mean: 0.1 * (2*u - 1)
    BatchNorm running_var:  0.5 + u
    fc.bias:                0.1 * (2*u - 1)
    input images ("input.224" [1,3,224,224], "input.64" [1,3,64,64]):  2*u - 1

num_batches_tracked buffers are not generated (unused in eval mode).
"""

import numpy as np

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for c in name.encode("utf-8"):
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def uniform(name, count):
    """float64 array u[0..count) in [0, 1) for tensor `name` (vectorised, wrapping uint64)."""
    h = np.uint64(fnv1a64(name))
    i = np.arange(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = h + (i + np.uint64(1)) * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * M1
        z = (z ^ (z >> np.uint64(27))) * M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def uniform_scalar(name, i):
    """Pure-Python (big integer) version of one element, used to cross-check `uniform`."""
    mask = 0xFFFFFFFFFFFFFFFF
    z = (fnv1a64(name) + (i + 1) * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return (z >> 11) * 2.0 ** -53


def kind_of(name, shape):
    """Which formula a torchvision ResNet state-dict entry uses."""
    if name.endswith("num_batches_tracked"):
        return None
    if name == "fc.weight" or (name.endswith(".weight") and len(shape) == 4):
        return "kaiming"
    if name == "fc.bias":
        return "fc_bias"
    if name.endswith(".running_mean"):
        return "bn_mean"
    if name.endswith(".running_var"):
        return "bn_var"
    if name.endswith(".weight") and len(shape) == 1:
        return "bn_weight"
    if name.endswith(".bias") and len(shape) == 1:
        return "bn_bias"
    raise ValueError("no rule for %s %s" % (name, shape))


def generate(name, shape):
    """float32 numpy array for state-dict entry `name` of `shape`."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape, dtype=np.int64))
    u = uniform(name, n)
    kind = kind_of(name, shape)
    if kind == "kaiming":
        fan_in = int(np.prod(shape[1:], dtype=np.int64))
        v = (2.0 * u - 1.0) * np.sqrt(6.0 / fan_in)
    elif kind in ("bn_weight", "bn_var"):
        v = 0.5 + u
    elif kind == "bn_bias":
        v = 0.2 * (2.0 * u - 1.0)
    elif kind in ("bn_mean", "fc_bias"):
        v = 0.1 * (2.0 * u - 1.0)
    else:
        raise ValueError(name)
    return v.astype(np.float32).reshape(shape)


def generate_input(name, shape):
    n = int(np.prod(shape, dtype=np.int64))
    return (2.0 * uniform(name, n) - 1.0).astype(np.float32).reshape(tuple(shape))


def state_dict_for(model):
    """Generated float32 tensors for every entry of model.state_dict() except num_batches_tracked."""
    out = {}
    for name, t in model.state_dict().items():
        if kind_of(name, tuple(t.shape)) is None:
            continue
        out[name] = generate(name, tuple(t.shape))
    return out
