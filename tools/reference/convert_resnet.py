"""Convert a torchvision ResNet checkpoint (.pth) to safetensors with the same tensor names.

    /usr/bin/python3 tools/reference/convert_resnet.py resnet18-f37072fd.pth model.safetensors [--dtype F32|F16|BF16]

The .pth may hold a state dict, a whole pickled nn.Module, or a dict with a "state_dict" /
"model" entry. A "module." prefix (DataParallel) is stripped. `num_batches_tracked` buffers
(unused in eval mode) are dropped. Everything else is written under its torchvision name
(conv1.weight, bn1.running_var, layer1.0.conv1.weight, layer2.0.downsample.0.weight, fc.bias,
...), float32 by default, layout as in PyTorch ([out, in, kh, kw] for conv, [out, in] for fc).
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from safetensors_io import save_file  # noqa: E402


def extract_state_dict(obj):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, torch.nn.Module)):
                return extract_state_dict(obj[key])
        return obj
    raise TypeError("unrecognised checkpoint content: %s" % type(obj))


def convert(src, dst, dtype="F32"):
    obj = torch.load(src, map_location="cpu")
    sd = extract_state_dict(obj)
    tensors = {}
    dropped = []
    for name, t in sd.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if name.endswith("num_batches_tracked"):
            dropped.append(name)
            continue
        if not torch.is_tensor(t) or not t.is_floating_point():
            raise TypeError("unexpected entry %s (%s)" % (name, type(t)))
        tensors[name] = (t.detach().float().contiguous().numpy(), dtype)
    save_file(tensors, dst, metadata={"format": "pt", "source": os.path.basename(src)})
    return tensors, dropped


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="torchvision ResNet .pth file")
    ap.add_argument("dst", help="output .safetensors file")
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    args = ap.parse_args()
    tensors, dropped = convert(args.src, args.dst, args.dtype)
    n = sum(v[0].size for v in tensors.values())
    print("wrote %s: %d tensors, %d parameters/buffers, dropped %d num_batches_tracked"
          % (args.dst, len(tensors), n, len(dropped)))


if __name__ == "__main__":
    main()
