"""A tiny ComfyUI custom node for docs/models-and-custom-nodes.md: tint an image."""

import torch


class ExampleTint:
    """Blend an image towards a colour."""

    CATEGORY = "image/comfygen example"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "tint"

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802 - ComfyUI's name
        return {
            "required": {
                "image": ("IMAGE",),
                "color": ("INT", {"default": 0xFF8800, "min": 0, "max": 0xFFFFFF,
                                  "tooltip": "Tint colour, 0xRRGGBB"}),
                "strength": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05}),
                "mode": (["mix", "multiply"], {"default": "mix"}),
                "invert_first": ("BOOLEAN", {"default": False}),
            }
        }

    def tint(self, image, color, strength, mode, invert_first):
        rgb = torch.tensor([(color >> 16) & 255, (color >> 8) & 255, color & 255]) / 255.0
        if invert_first:
            image = 1.0 - image
        target = image * rgb if mode == "multiply" else rgb.expand_as(image)
        return (torch.lerp(image, target, strength),)


NODE_CLASS_MAPPINGS = {"ExampleTint": ExampleTint}
NODE_DISPLAY_NAME_MAPPINGS = {"ExampleTint": "Tint (comfygen example)"}
