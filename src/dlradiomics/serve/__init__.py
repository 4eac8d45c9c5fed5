"""The case viewer: `dlradiomics serve BUNDLE`, a local web page that applies a model bundle to one case.

A user uploads an image and its mask for each modality the model uses and sees the probability,
the class at the frozen threshold, each part's probability, Grad-CAM for the deep parts, where the
key features fall against the training distribution and any warning. The server writes the
uploads as a one-patient manifest and predicts it with the same function as `dlradiomics predict`.
"""

from dlradiomics.serve.app import create_app

__all__ = ["create_app"]
