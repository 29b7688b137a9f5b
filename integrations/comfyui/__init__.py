"""xsteer's ComfyUI node pack: copy or link this folder into ``ComfyUI/custom_nodes/`` (see
README.md). ComfyUI reads the two mappings below."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
