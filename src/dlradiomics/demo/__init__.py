"""The embedded demo: data shipped under `demo/data/` and `run_demo` (see `dlradiomics.demo.demo`)."""
