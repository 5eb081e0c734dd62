"""The PyTorch shard-in-RAM peer of `abliterate ablate`, for `npm run bench` (bench/ablate.ts).

What a PyTorch user writes to abliterate a checkpoint: read each shard whole into memory, view its tensors with
torch, orthogonalize the target tensors in float32 (W <- W - r (r^T W) for the out-projections, E <- E - (E r) r^T
for the embedding), and save the shard. The safetensors Python package is not installed here, so the shard format
(an 8-byte little-endian header length, a JSON header, then the tensor bytes) is read with a small parser, and the
edits are written back in place into the shard's bytes through torch.frombuffer views, so the output keeps the
input's header and layout byte for byte, as abliterate's does.

usage: python3 torch_peer.py MODEL_DIR DIRECTION_JSON PLAN_JSON OUT_DIR
  PLAN_JSON: {"tensor name": "rows" | "columns"}, the targets `abliterate ablate` edits on the same model.
"""
import json
import os
import shutil
import struct
import sys

import torch

DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def edit_shard(path, out_path, plan, direction):
    with open(path, "rb") as handle:
        data = bytearray(handle.read())  # the whole shard in RAM
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length])
    base = 8 + header_length
    for name, info in header.items():
        orientation = plan.get(name)
        if name == "__metadata__" or orientation is None:
            continue
        dtype = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = (end - begin) // (torch.finfo(dtype).bits // 8)
        stored = torch.frombuffer(data, dtype=dtype, count=count, offset=base + begin).view(info["shape"])
        weight = stored.float()
        if orientation == "rows":  # [..., d]: each row loses its r component
            weight -= (weight @ direction).unsqueeze(-1) * direction
        else:  # [..., d, in]: each column loses its r component
            weight -= direction.unsqueeze(-1) * (direction @ weight).unsqueeze(-2)
        stored.copy_(weight.to(dtype))  # writes through into `data`
    with open(out_path, "wb") as handle:
        handle.write(data)


def main():
    model_dir, direction_json, plan_json, out_dir = sys.argv[1:5]
    with open(direction_json) as handle:
        direction = torch.tensor(json.load(handle), dtype=torch.float32)
    direction /= direction.norm()
    with open(plan_json) as handle:
        plan = json.load(handle)
    os.makedirs(out_dir, exist_ok=True)
    for root, _, files in os.walk(model_dir):
        for file in sorted(files):
            source = os.path.join(root, file)
            target = os.path.join(out_dir, os.path.relpath(source, model_dir))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if file.endswith(".safetensors"):
                edit_shard(source, target, plan, direction)
            else:
                shutil.copyfile(source, target)


if __name__ == "__main__":
    main()
