"""dlradiomics: deep learning radiomics for breast tumour classification, with results that hold up."""

__version__ = "0.1.0"
