"""Recover a trainable float YOLO checkpoint (YOLO26n first) from Ultralytics' INT8 OpenVINO export.

Ultralytics' `format=openvino int8=True` export (NNCF) keeps every convolution's weights as a per-channel int8
constant dequantised in the graph (`Multiply(Convert(int8 Constant), scale)`; a GroupConvolution's weights are
shaped [G, O/G, I/G, kh, kw]), with BatchNorm folded in: the fused bias is the constant of the `Add` that follows
the convolution. The friendly name of each convolution carries its PyTorch module name
(`__module.model.2.cv1.conv/aten::_convolution/Convolution`), so the weights go back into
`DetectionModel(arch, nc=80)` by name (what `../shared/weights/README.md` records, measured):

- a Conv+BatchNorm block (`....conv`) gets the fused weight; its BatchNorm is set to identity carrying the bias
  (exact in eval mode; `training.onnx_init.calibrate_batchnorm` then makes it right in train mode too);
- a plain head convolution (`model.23.one2one_cv3.0.2`) takes weight and bias directly;
- an NMS-free (end-to-end) head is exported with its one-to-one branch only: the one-to-many training branch
  (`cv2`/`cv3`) starts as its copy, and the head is marked end-to-end as in Ultralytics' own checkpoint.

Every learnable convolution of the architecture must be found, with its shape: anything else is refused in one
line, so no random weights are left behind silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streetwatch.detector.errors import ModelError
from streetwatch.detector.offline import prepare_offline

CONV_TYPES = ("Convolution", "GroupConvolution")
_MODULE = re.compile(r"^__module\.([A-Za-z0-9_.]+)/")


@dataclass(frozen=True)
class IRConv:
    module: str  # PyTorch module name, e.g. "model.2.cv1.conv"
    weight: np.ndarray  # float32, PyTorch layout [O, I/groups, kh, kw]
    bias: np.ndarray | None  # float32 [O], the constant of the Add that follows (BatchNorm folded in)


def _constant(node, where: str) -> np.ndarray:
    """Fold a weight subgraph made of constants (Constant, Convert, Multiply, Subtract, Reshape...) to float32."""
    kind = node.get_type_name()
    args = [node.input_value(i).get_node() for i in range(node.get_input_size())]
    if kind == "Constant":
        return np.asarray(node.get_data()).astype(np.float32)
    if kind == "Convert":
        return _constant(args[0], where)
    if kind in ("Multiply", "Subtract", "Add", "Divide"):
        a, b = _constant(args[0], where), _constant(args[1], where)
        return {"Multiply": np.multiply, "Subtract": np.subtract, "Add": np.add, "Divide": np.divide}[kind](a, b)
    if kind in ("Reshape", "Squeeze", "Unsqueeze"):
        return _constant(args[0], where).reshape(tuple(node.get_output_shape(0)))
    if kind == "Transpose":
        return np.transpose(_constant(args[0], where), _constant(args[1], where).astype(np.int64))
    raise ModelError(f"{where}: weights come from a {kind} node, not a constant int8/float subgraph; "
                     f"not an Ultralytics OpenVINO export this converter knows")


def _ir_xml(ir_dir: Path) -> Path:
    ir_dir = Path(ir_dir)
    if ir_dir.is_file() and ir_dir.suffix == ".xml":
        return ir_dir
    found = sorted(ir_dir.glob("*.xml")) if ir_dir.is_dir() else []
    if len(found) != 1:
        raise ModelError(f"{ir_dir}: expected an OpenVINO export folder with one .xml (found {len(found)})")
    return found[0]


def read_ir_convolutions(ir_dir: Path) -> list[IRConv]:
    """Every convolution of the IR in float: dequantised weight, fused bias, and the PyTorch module name."""
    import openvino as ov

    xml = _ir_xml(ir_dir)
    try:
        model = ov.Core().read_model(str(xml))
    except Exception as exc:  # openvino raises RuntimeError for anything it cannot parse
        raise ModelError(f"{xml}: not a readable OpenVINO IR ({exc.__class__.__name__}: {exc})") from exc
    convs = []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind not in CONV_TYPES:
            continue
        name = op.get_friendly_name()
        match = _MODULE.match(name)
        if not match:
            raise ModelError(f"{xml}: convolution {name!r} carries no PyTorch module name (__module.X/...)")
        weight = _constant(op.input_value(1).get_node(), name)
        if kind == "GroupConvolution":  # [G, O/G, I/G, kh, kw] -> [O, I/G, kh, kw]
            weight = weight.reshape(weight.shape[0] * weight.shape[1], *weight.shape[2:])
        bias = None
        for target in op.output(0).get_target_inputs():
            add = target.get_node()
            if add.get_type_name() != "Add":
                continue
            other = add.input_value(1 - target.get_index()).get_node()
            try:
                bias = _constant(other, add.get_friendly_name()).reshape(-1)
            except ModelError:
                continue
            break
        if bias is not None and bias.shape[0] != weight.shape[0]:
            raise ModelError(f"{xml}: {name}: bias has {bias.shape[0]} values for {weight.shape[0]} output channels")
        convs.append(IRConv(match.group(1), np.ascontiguousarray(weight, dtype=np.float32), bias))
    if not convs:
        raise ModelError(f"{xml}: no convolutions found; expected an Ultralytics YOLO OpenVINO export")
    return convs


def read_ir_metadata(ir_dir: Path) -> dict:
    """The export's metadata.yaml (class names, imgsz, end2end...), {} when absent."""
    import yaml

    xml = _ir_xml(ir_dir)
    meta = xml.parent / "metadata.yaml"
    return (yaml.safe_load(meta.read_text()) or {}) if meta.is_file() else {}


def _expected_convolutions(model) -> list[str]:
    """Module names of the learnable convolutions an export must supply: all of them, except the one-to-many head
    of an end-to-end model (exported without it; it starts as the one-to-one copy) and the fixed DFL convolution."""
    from torch import nn

    head = model.model[-1]
    e2e = getattr(head, "one2one_cv2", None) is not None
    head_name = f"model.{len(model.model) - 1}"
    skip = (f"{head_name}.cv2.", f"{head_name}.cv3.") if e2e else ()
    names = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and not name.startswith((*skip, f"{head_name}.dfl")):
            names.append(name)
    return names


def recover_from_openvino(ir_dir: Path, arch: str = "yolo26n.yaml"):
    """Build `arch` (nc = the export's classes) and load the IR's convolutions into it by module name.

    Returns `(model, report)`: an Ultralytics DetectionModel in eval mode, COCO (export) names set, end-to-end
    head when the architecture has one; report = {"loaded": n, "expected": n, "ir_convolutions": n}.
    Raises ModelError (one line) when any expected convolution is missing or has another shape.
    """
    prepare_offline()
    import torch
    from torch import nn
    from ultralytics.nn.tasks import DetectionModel

    convs = read_ir_convolutions(ir_dir)
    meta = read_ir_metadata(ir_dir)
    names = {int(k): str(v) for k, v in (meta.get("names") or {}).items()}
    nc = len(names) or 80
    try:
        model = DetectionModel(arch, nc=nc, verbose=False)
    except Exception as exc:  # a YAML Ultralytics does not know, a bad path
        raise ModelError(f"{arch}: cannot build the architecture ({exc.__class__.__name__}: {exc})") from exc
    modules = dict(model.named_modules())
    expected = _expected_convolutions(model)
    loaded: set[str] = set()
    problems: list[str] = []
    with torch.no_grad():
        for conv in convs:
            if ".dfl." in f".{conv.module}.":  # the fixed DFL convolution (arange), not a learned one
                continue
            target = modules.get(conv.module)
            if not isinstance(target, nn.Conv2d):
                problems.append(f"{conv.module}: not a convolution of {arch}")
                continue
            if tuple(target.weight.shape) != conv.weight.shape:
                problems.append(f"{conv.module}: shape {conv.weight.shape} in the export, "
                                f"{tuple(target.weight.shape)} in {arch}")
                continue
            if conv.bias is None:
                problems.append(f"{conv.module}: no bias (Add) after the convolution in the export")
                continue
            target.weight.copy_(torch.from_numpy(conv.weight))
            block = modules.get(conv.module[: -len(".conv")]) if conv.module.endswith(".conv") else None
            bn = getattr(block, "bn", None)
            if isinstance(bn, nn.BatchNorm2d):  # Conv+BN block: BN folded into the export
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(conv.bias))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)  # sqrt(var + eps) == 1
            elif target.bias is not None:  # plain head convolution with its own bias
                target.bias.copy_(torch.from_numpy(conv.bias))
            else:
                problems.append(f"{conv.module}: neither a BatchNorm nor a bias to carry the export's bias")
                continue
            loaded.add(conv.module)
    missing = [name for name in expected if name not in loaded]
    if missing or problems:
        first = (problems + [f"{m}: missing from the export" for m in missing])[0]
        raise ModelError(f"{ir_dir}: loaded {len(loaded & set(expected))}/{len(expected)} convolutions of {arch} "
                         f"({len(missing)} missing, {len(problems)} not matching; first: {first}); "
                         f"is it an export of the same architecture?")
    head = model.model[-1]
    if getattr(head, "one2one_cv2", None) is not None:  # one-to-many (training) branch starts as the one-to-one copy
        head.cv2.load_state_dict(head.one2one_cv2.state_dict())
        head.cv3.load_state_dict(head.one2one_cv3.state_dict())
        model.end2end = bool(meta.get("end2end", True))
    model.names = names or {i: f"class{i}" for i in range(nc)}
    model.args = {"task": "detect", "imgsz": int(max(meta.get("imgsz") or [640]))}
    report = {"loaded": len(loaded), "expected": len(expected), "ir_convolutions": len(convs)}
    return model.eval(), report


def save_ultralytics_checkpoint(model, path: Path, source: str = "") -> Path:
    """Write `model` in the layout of Ultralytics' own released .pt files (what `strip_optimizer` leaves), in fp32,
    so `YOLO(path)` loads it and `model.train` starts from it."""
    from datetime import datetime, timezone

    import torch
    import ultralytics

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for param in model.parameters():
        param.requires_grad = False
    ckpt = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": ultralytics.__version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "epoch": -1,
        "best_fitness": None,
        "model": model,
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": dict(getattr(model, "args", {}) or {}),
        "train_metrics": None,
        "train_results": None,
        "streetwatch_source": source,
    }
    torch.save(ckpt, path)
    return path


def data_train_images(data: Path, limit: int = 128) -> list[Path]:
    """Up to `limit` training images of a data.yaml (an image folder or a .txt list), shuffled with a fixed seed."""
    import random

    from streetwatch.training.train import split_entry

    entry = split_entry(data, "train")
    if entry.is_file():
        images = [Path(line.strip()) for line in entry.read_text().splitlines() if line.strip()]
        images = [p if p.is_absolute() else entry.parent / p for p in images]
    elif entry.is_dir():
        images = sorted(p for p in entry.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    else:
        images = []
    random.Random(0).shuffle(images)
    return images[:limit]


def convert_openvino(
    ir_dir: Path,
    out_path: Path,
    arch: str = "yolo26n.yaml",
    class_names: list[str] | None = None,
    calibration_images: Sequence[Path] = (),
    imgsz: int = 640,
) -> tuple[Path, dict]:
    """Recover, optionally retarget to `class_names` (rows of classes the export knew are kept, in both heads of
    an end-to-end model) and calibrate BatchNorm on training images, save. Returns (path, report)."""
    from streetwatch.training.onnx_init import calibrate_batchnorm, retarget_classes

    model, report = recover_from_openvino(ir_dir, arch)
    if class_names:
        coco = dict(model.names)
        end2end = model.end2end
        model = retarget_classes(model, coco, list(class_names))
        model.end2end = end2end
        report["kept_rows"] = [n for n in class_names if n in coco.values()]
    if calibration_images:
        report["calibrated_batchnorms"] = calibrate_batchnorm(model, list(calibration_images), imgsz=imgsz)
    source = f"{_ir_xml(ir_dir)} ({read_ir_metadata(ir_dir).get('description', '')})"
    return save_ultralytics_checkpoint(model, out_path, source), report
