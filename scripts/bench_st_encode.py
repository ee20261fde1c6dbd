#!/usr/bin/env python3
"""Time sentence-transformers encoding all-MiniLM-L6-v2 on a text set: the baseline kass's own
embedding runtimes are measured against.

Why: a throughput figure only means something next to the reference measured the same way: same
texts (scripts/bench-texts.py), same batch size, same thread count, on the same machine. This
script prints one JSON line per run so figures from different runtimes can be collected side by
side:

  {"runtime": "sentence-transformers", "texts": N, "seconds": S, "texts_per_s": R,
   "threads": T, "batch_size": B, ...}

`seconds` is the median of --repeat timed passes over all texts (after one untimed warm-up batch);
each pass is model.encode(texts, batch_size, normalize_embeddings=True), which sorts the texts by
length before batching and pads each batch to its longest text, truncated at --max-seq-length.

    ~/.cache/kass/st-venv/bin/python scripts/bench-texts.py /tmp/kass-bench-texts
    ~/.cache/kass/st-venv/bin/python scripts/bench_st_encode.py --texts /tmp/kass-bench-texts/long.jsonl

The venv recipe is in scripts/st-venv-requirements.txt. The model is read from --model-dir,
$KASS_MODEL_DIR or ~/.cache/kass/models/all-MiniLM-L6-v2; nothing is fetched (HF_HUB_OFFLINE=1).

--backend onnx-int8 / openvino time the same encode with the transformer forward run by ONNX
Runtime (dynamically int8-quantized for avx512_vnni) or OpenVINO (its CPU default precision, bf16
where the CPU has it), the CPU speed-ups sentence-transformers documents, so kass's own int8 model
is compared with ST at its fastest, not only with torch fp32. ST's own backend="onnx"/"openvino"
needs optimum-onnx / optimum-intel, and no release of either accepts ST 6's transformers 5
(optimum-onnx 0.1.0: transformers<4.58; optimum-intel 2.2.0: transformers<5.6,
huggingface-hub<1.22; neither imports with 5.24). So this does what those backends do with
onnxruntime, onnx and openvino alone (their pip line is in
scripts/st-venv-backends-constraints.txt): export the BertModel as optimum does (TorchScript
exporter, opset 18, dynamic batch and sequence axes) and quantize it with ORT's quantizer and the
settings of optimum's AutoQuantizationConfig.avx512_vnni(is_static=False), or convert it with
openvino.convert_model, and put the result in place of the torch module inside the
SentenceTransformer, so tokenizing, batching, pooling and normalizing stay ST's. Exports are cached
under ~/.cache/kass/st-onnx/ and ~/.cache/kass/st-openvino/. Those lines say "st-onnx-int8" /
"st-openvino" and add the backend's own thread count and precision.
--save-vectors writes the normalized vectors (input order) to compare backends' accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar on stderr


def read_texts(path: Path) -> list[str]:
    """JSONL with one {"text": ...} per line, or plain text with one text per line."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        sys.exit(f"{path}: no texts")
    try:
        first = json.loads(lines[0])
    except json.JSONDecodeError:
        first = None
    if not (isinstance(first, dict) and "text" in first):
        return lines
    texts = []
    for n, line in enumerate(lines, 1):
        try:
            texts.append(str(json.loads(line)["text"]))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            sys.exit(f"{path}:{n}: not a {{\"text\": ...}} object ({e})")
    return texts


def _replace_forward(model, run) -> None:
    """Puts `run(input_ids, attention_mask, token_type_ids)` (numpy int64 in, last hidden state
    out) in place of the torch BertModel inside ST's Transformer module, as ST's ORT/OpenVINO
    backends put optimum's ORTModel/OVModel there."""
    import numpy as np
    import torch

    class Forward(torch.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config

        def forward(self, input_ids, attention_mask, token_type_ids=None, **_):
            ids = input_ids.numpy()
            types = np.zeros_like(ids) if token_type_ids is None else token_type_ids.numpy()
            hidden = run(ids, attention_mask.numpy(), types)
            return {"last_hidden_state": torch.from_numpy(hidden)}

    model[0].model = Forward(model[0].model.config)


def _dummy_batch() -> dict:
    """Export example: two texts, the second padded, so no all-ones-mask shortcut is traced in."""
    import torch

    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 10:] = 0
    return {"input_ids": torch.full((2, 16), 1000) * mask, "attention_mask": mask,
            "token_type_ids": torch.zeros(2, 16, dtype=torch.long)}


def _export_onnx(bert, path: Path) -> None:
    """The BertModel as optimum-onnx 0.1.0 exports it for feature-extraction."""
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {0: "batch_size", 1: "sequence_length"}
    dummy = _dummy_batch()
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(Hidden().eval(), tuple(dummy.values()), str(path), input_names=names,
                          output_names=["last_hidden_state"],
                          dynamic_axes={n: axes for n in names + ["last_hidden_state"]},
                          opset_version=18, do_constant_folding=True, dynamo=False)


def use_onnx_int8(model, cache: Path, threads: int) -> tuple[dict, str]:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer
    from onnxruntime.quantization.quant_utils import QuantizationMode, QuantType
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    fp32, int8 = cache / "model.onnx", cache / "model_qint8_avx512_vnni.onnx"
    if not int8.exists():
        _export_onnx(model[0].model, fp32)
        # optimum's ORTQuantizer.quantize with AutoQuantizationConfig.avx512_vnni(is_static=False)
        quantizer = ONNXQuantizer(
            onnx.load(str(fp32)), per_channel=True, reduce_range=False,
            mode=QuantizationMode.IntegerOps, static=False, weight_qType=QuantType.QInt8,
            activation_qType=QuantType.QUInt8, tensors_range=None, nodes_to_quantize=[],
            nodes_to_exclude=[], op_types_to_quantize=list(IntegerOpsRegistry),
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False,
                           "EnableSubgraph": False, "ForceSymmetric": False})
        quantizer.quantize_model()
        quantizer.model.save_model_to_file(str(int8))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
    _replace_forward(model, lambda ids, mask, types: session.run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0])
    return ({"model_file": str(int8), "intra_op_num_threads": threads, "inter_op_num_threads": 1},
            f"onnxruntime {ort.__version__}")


def use_openvino(model, cache: Path, threads: int) -> tuple[dict, str]:
    import openvino as ov
    import torch

    xml = cache / "openvino_model.xml"
    if not xml.exists():
        with torch.no_grad():
            converted = ov.convert_model(model[0].model, example_input=_dummy_batch())
        cache.mkdir(parents=True, exist_ok=True)
        ov.save_model(converted, str(xml), compress_to_fp16=False)  # as optimum-intel saves it
    # optimum-intel's OVModel adds PERFORMANCE_HINT=LATENCY to the caller's ov_config
    compiled = ov.Core().compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                         "INFERENCE_NUM_THREADS": threads})
    names = [i.get_any_name() for i in compiled.inputs]
    request = compiled.create_infer_request()

    def run(ids, mask, types):
        given = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return request.infer({n: given[n] for n in names})[0].copy()

    _replace_forward(model, run)
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
    return ({"inference_precision_hint": precision,
             "inference_num_threads": compiled.get_property("INFERENCE_NUM_THREADS"),
             "num_streams": str(compiled.get_property("NUM_STREAMS")),
             "model_file": str(xml)},
            f"openvino {ov.__version__}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=Path, required=True,
                        help='JSONL of {"text": ...} objects, or plain text lines')
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch.set_num_threads, and the backend's own thread count")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the median is reported")
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--backend", choices=["torch", "onnx-int8", "openvino"], default="torch",
                        help="what runs the transformer forward (see above)")
    parser.add_argument("--save-vectors", type=Path, help="write the normalized vectors as .npy")
    parser.add_argument("--model-dir", type=Path,
                        default=Path(os.environ.get("KASS_MODEL_DIR")
                                     or Path.home() / ".cache/kass/models/all-MiniLM-L6-v2"))
    args = parser.parse_args()
    if args.repeat < 1 or args.batch_size < 1 or args.threads < 1:
        parser.error("--repeat, --batch-size and --threads must be at least 1")

    texts = read_texts(args.texts)

    import torch
    from sentence_transformers import SentenceTransformer
    import sentence_transformers

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(str(args.model_dir), device="cpu")
    model.max_seq_length = args.max_seq_length
    backend, backend_version = {}, ""
    cache = Path.home() / ".cache/kass" / f"st-{args.backend.split('-')[0]}" / args.model_dir.name
    if args.backend == "onnx-int8":
        backend, backend_version = use_onnx_int8(model, cache, args.threads)
    elif args.backend == "openvino":
        backend, backend_version = use_openvino(model, cache, args.threads)

    def encode(batch: list[str]):
        return model.encode(batch, batch_size=args.batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    encode(texts[: args.batch_size])  # warm-up: first-call allocations and kernel selection
    runs = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        vectors = encode(texts)
        runs.append(time.perf_counter() - start)
    seconds = statistics.median(runs)
    if args.save_vectors:
        import numpy as np

        np.save(args.save_vectors, vectors)

    print(json.dumps({
        "runtime": {"torch": "sentence-transformers", "onnx-int8": "st-onnx-int8",
                    "openvino": "st-openvino"}[args.backend],
        "texts": len(texts),
        "seconds": round(seconds, 3),
        "texts_per_s": round(len(texts) / seconds, 1),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "repeat": args.repeat,
        "runs_s": [round(r, 3) for r in runs],
        "file": str(args.texts),
        "version": f"sentence-transformers {sentence_transformers.__version__}, "
                   f"torch {torch.__version__}"
                   + (f", {backend_version}" if backend_version else ""),
        **({"backend": backend} if backend else {}),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
