"""Which model files a graph names, which `models/` folder each belongs in, and which are missing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from comfygen.nodedefs import NodeDefs

MODEL_FOLDERS = {
    "ckpt_name": "checkpoints",
    "clip_name": "text_encoders",
    "clip_name1": "text_encoders",
    "clip_name2": "text_encoders",
    "clip_name3": "text_encoders",
    "clip_name4": "text_encoders",
    "vae_name": "vae",
    "lora_name": "loras",
    "unet_name": "diffusion_models",
    "control_net_name": "controlnet",
    "style_model_name": "style_models",
    "gligen_name": "gligen",
    "hypernetwork_name": "hypernetworks",
    "config_name": "configs",
    "photomaker_model_name": "photomaker",
    "model_name": "upscale_models",
}
"""Which models/ folder a loader input reads from (ComfyUI's folder_paths names)."""
CLASS_FOLDERS = {("CLIPVisionLoader", "clip_name"): "clip_vision"}
LOADER_FOLDERS = tuple(sorted({*MODEL_FOLDERS.values(), *CLASS_FOLDERS.values()}))
"""The model folders the loaders above read: the ones watched for changes."""
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")


def model_folder(class_type: str, input_name: str, value: Any = None) -> str | None:
    """The models/ folder a loader input reads from, when it is one (or its value looks like a
    model file)."""
    folder = CLASS_FOLDERS.get((class_type, input_name)) or MODEL_FOLDERS.get(input_name)
    if folder is None and isinstance(value, str) and value.lower().endswith(MODEL_SUFFIXES):
        folder = "models"
    return folder


def missing_models(graph: Mapping[str, Any], nodedefs: NodeDefs) -> list[dict[str, Any]]:
    """Every model file the graph names that ComfyUI does not list, with folder, node, input."""
    missing = []
    for node_id, node in graph.items():
        if not isinstance(node, Mapping):
            continue
        class_type = str(node.get("class_type"))
        nodedef = nodedefs.get(class_type)
        for name, value in (node.get("inputs") or {}).items():
            if not isinstance(value, str):
                continue
            folder = model_folder(class_type, name, value)
            idef = nodedef.input(name) if nodedef is not None else None
            if folder is None or idef is None or idef.kind != "COMBO" or idef.section == "hidden":
                continue
            if value not in (idef.choices or ()):
                missing.append({"file": value, "folder": folder, "node": str(node_id),
                                "input": name, "class_type": class_type})
    return missing


def missing_message(missing: list[Mapping[str, Any]]) -> str:
    """One sentence naming every missing file and its folder, and what to do."""
    names = ", ".join(f"{m['file']} (models/{m['folder']})" for m in missing)
    return (f"ComfyUI lacks the model file(s) this workflow needs: {names}. Put them in those "
            "folders of ComfyUI's models directory (or pick installed ones; GET /models lists "
            "them).")
