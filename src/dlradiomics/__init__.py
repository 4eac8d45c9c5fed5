"""dlradiomics: deep learning radiomics for breast tumour classification, with results that hold up."""

__version__ = "0.1.0"

_API_NAMES = ("Study", "StudySettings", "load_bundle", "save_bundle", "predict_manifest", "run_demo")


def __getattr__(name: str):
    # The notebook API is re-exported lazily: `import dlradiomics` stays fast (no torch, no sklearn)
    # until a name of the API is first used.
    if name in _API_NAMES:
        from dlradiomics import api

        return getattr(api, name)
    raise AttributeError(f"module 'dlradiomics' has no attribute {name!r}")
