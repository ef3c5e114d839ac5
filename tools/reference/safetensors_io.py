"""Minimal pure-Python (numpy) safetensors writer and reader.

File layout (https://huggingface.co/docs/safetensors):

    [8 bytes]  N = header length, unsigned 64-bit little-endian
    [N bytes]  UTF-8 JSON object
                 { "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
                   "__metadata__": {"key": "string value", ...} }      (optional)
               padded with spaces (0x20) so that 8 + N is a multiple of 8
    [rest]     raw little-endian tensor data, row-major; data_offsets are relative to the
               start of this section

Supported dtypes: F32, F16, BF16, I64.

BF16 is produced from float32 by round-to-nearest-even on the upper 16 bits, exactly as
torch's ``tensor.to(torch.bfloat16)`` does (NaN becomes the quiet NaN 0x7FC0). Widening
BF16 back to float32 is exact: the 16 stored bits become the upper half of the float32 bit
pattern (lower half zero). F16 uses IEEE binary16 (numpy's float16 cast, round-to-nearest-
even); widening to float32 is exact (what System.Half -> float does in C#).

Only numpy is required; torch is not.
"""

import json
import struct

import numpy as np

__all__ = [
    "f32_to_bf16_bits",
    "bf16_bits_to_f32",
    "round_bf16",
    "round_f16",
    "save_file",
    "load_file",
]

_DTYPES = {
    # name: (numpy storage dtype, bytes per element)
    "F32": (np.dtype("<f4"), 4),
    "F16": (np.dtype("<f2"), 2),
    "BF16": (np.dtype("<u2"), 2),
    "I64": (np.dtype("<i8"), 8),
}


def f32_to_bf16_bits(x):
    """float32 array -> uint16 array of bfloat16 bit patterns (round to nearest, ties to even)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    bits = x.view(np.uint32).astype(np.uint64)
    rounding_bias = ((bits >> 16) & 1) + 0x7FFF
    out = ((bits + rounding_bias) >> 16).astype(np.uint16)
    out[np.isnan(x)] = 0x7FC0
    return out


def bf16_bits_to_f32(b):
    """uint16 bfloat16 bit patterns -> float32 (exact: bits shifted into the upper half)."""
    b = np.asarray(b, dtype=np.uint16)
    return (b.astype(np.uint32) << 16).view(np.float32)


def round_bf16(x):
    """float32 -> nearest bfloat16 value, returned widened to float32."""
    return bf16_bits_to_f32(f32_to_bf16_bits(x))


def round_f16(x):
    """float32 -> nearest float16 value, returned widened to float32."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def _to_numpy(t):
    # Accept numpy arrays, python lists and torch tensors (without importing torch).
    if hasattr(t, "detach") and hasattr(t, "cpu"):
        t = t.detach().cpu().numpy()
    return np.asarray(t)


def _encode(arr, dtype):
    if dtype == "F32":
        data = np.ascontiguousarray(arr, dtype="<f4")
    elif dtype == "F16":
        data = np.ascontiguousarray(np.asarray(arr, dtype=np.float32).astype("<f2"))
    elif dtype == "BF16":
        data = np.ascontiguousarray(f32_to_bf16_bits(arr).astype("<u2"))
    elif dtype == "I64":
        a = np.asarray(arr)
        if a.dtype.kind not in "iub":
            raise TypeError("I64 tensor needs integer data, got %s" % a.dtype)
        data = np.ascontiguousarray(a, dtype="<i8")
    else:
        raise ValueError("unsupported dtype %r (F32, F16, BF16, I64)" % dtype)
    return data.tobytes()


def _default_dtype(arr):
    if arr.dtype.kind in "iub":
        return "I64"
    if arr.dtype == np.float16:
        return "F16"
    return "F32"


def save_file(tensors, path, metadata=None):
    """Write a safetensors file.

    tensors: dict name -> array-like, or name -> (array-like, dtype) with dtype one of
             "F32", "F16", "BF16", "I64". Without an explicit dtype: integers -> I64,
             float16 -> F16, anything else -> F32. Tensors are stored in the dict's order.
    metadata: optional dict str -> str, written as "__metadata__".
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, value in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved")
        if isinstance(value, tuple):
            arr, dtype = value
            arr = _to_numpy(arr)
        else:
            arr = _to_numpy(value)
            dtype = _default_dtype(arr)
        blob = _encode(arr, dtype)
        n = int(np.prod(arr.shape, dtype=np.int64))
        assert len(blob) == n * _DTYPES[dtype][1]
        header[name] = {
            "dtype": dtype,
            "shape": [int(s) for s in arr.shape],
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    pad = (-(8 + len(hjson))) % 8
    hjson += b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for blob in blobs:
            f.write(blob)


def load_file(path, widen=True, with_metadata=False):
    """Read a safetensors file -> dict name -> numpy array (in file order).

    widen=True: BF16 and F16 come back as float32 (exact widening); widen=False: F16 comes
    back as float16 and BF16 as the raw uint16 bit patterns.
    with_metadata=True: returns (tensors, metadata_dict_or_None).
    """
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n :]
    metadata = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        dtype = info["dtype"]
        if dtype not in _DTYPES:
            raise ValueError("unsupported dtype %r in %s" % (dtype, name))
        np_dtype, size = _DTYPES[dtype]
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * size:
            raise ValueError("tensor %s: %d bytes for shape %s %s" % (name, end - begin, shape, dtype))
        arr = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(shape).copy()
        if widen and dtype == "BF16":
            arr = bf16_bits_to_f32(arr)
        elif widen and dtype == "F16":
            arr = arr.astype(np.float32)
        elif dtype in ("F32", "I64"):
            arr = arr.astype(np_dtype.newbyteorder("="))
        out[name] = arr
    return (out, metadata) if with_metadata else out


if __name__ == "__main__":
    # Self-test: BF16 rounding against torch (when available) and a write/read round trip.
    import os
    import tempfile

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(100000) * np.exp(rng.uniform(-20, 20, 100000))).astype(np.float32)
    edge = np.array([0.0, -0.0, 1.0, 1.00390625, 1.01171875, 3.4e38, -3.4e38, np.inf, -np.inf,
                     np.nan, 1e-40, -1e-45], dtype=np.float32)
    # exact ties: mantissa low half == 0x8000 with even / odd upper halves
    ties = np.array([0x3F808000, 0x3F818000, 0xBF808000, 0x7F7F8000], dtype=np.uint32).view(np.float32)
    x = np.concatenate([x, edge, ties])
    try:
        import torch

        ref = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        mine = f32_to_bf16_bits(x)
        ok = (ref == mine) | (np.isnan(x))
        assert ok.all(), "BF16 rounding differs from torch at %s" % x[~ok][:5]
        h16 = torch.from_numpy(x).to(torch.float16).numpy()
        with np.errstate(over="ignore"):
            assert np.array_equal(h16.view(np.uint16), x.astype(np.float16).view(np.uint16)), "F16 differs"
        print("BF16/F16 rounding matches torch on %d values" % x.size)
    except ImportError:
        print("torch not available; skipped the torch comparison")
    d = tempfile.mkdtemp()
    p = os.path.join(d, "t.safetensors")
    t = {"a": (x[:10].reshape(2, 5), "BF16"), "b": (x[:6], "F16"), "c": x[:3],
         "d": np.arange(7, dtype=np.int64) - 3, "e": np.zeros((0, 3), np.float32)}
    save_file(t, p, metadata={"format": "pt"})
    back, meta = load_file(p, with_metadata=True)
    assert meta == {"format": "pt"}
    assert np.array_equal(back["a"], round_bf16(x[:10]).reshape(2, 5), equal_nan=True)
    assert np.array_equal(back["b"], round_f16(x[:6]), equal_nan=True)
    assert np.array_equal(back["c"], x[:3], equal_nan=True)
    assert np.array_equal(back["d"], np.arange(7) - 3) and back["d"].dtype == np.int64
    assert back["e"].shape == (0, 3)
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
    assert (8 + n) % 8 == 0
    print("round trip ok")
