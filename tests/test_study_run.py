"""End to end: a tiny study on the shipped demo images -> run folder, report, bundle; re-run is cached;
the bundle predicts new patients exactly as its model does, and explains failures."""

from __future__ import annotations

import base64
import hashlib
import io
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from dlradiomics.api import Study, load_bundle, predict_manifest
from demo_rows import demo_us_rows

N_PER_CLASS = 9


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """A US-only study of 18 demo patients, run twice (the second run must be served from the store)."""
    folder = tmp_path_factory.mktemp("study")
    chosen, others = demo_us_rows(N_PER_CLASS)
    chosen.to_csv(folder / "manifest.csv", index=False)
    held_out = others.groupby("label").head(2).copy()
    study = {
        "name": "tiny",
        "cohort": {"manifest": "manifest.csv", "modalities": ["US"]},
        "deep": {"pca_components": 4},
        "classifiers": ["logistic"],
        "feature_sources": ["radiomic", "deep"],
        "fusion": ["single"],
        "cv": {"outer_folds": 3, "inner_folds": 3, "seed": 3},
        "report": {"bootstrap": 20, "gradcam_examples": 2, "canary": True, "note": "A tiny test cohort."},
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(study))
    first = Study.from_yaml(folder / "study.yaml").run(progress=False)
    second = Study.from_yaml(folder / "study.yaml").run(progress=False)
    return folder, first, second, held_out


def test_run_folder_holds_provenance(tiny_study):
    folder, first, _, _ = tiny_study
    run = first.run_dir
    assert run.parent == folder / "output" / "runs"
    assert yaml.safe_load((run / "settings.yaml").read_text())["classifiers"] == ["logistic"]
    assert "scikit-learn" in (run / "versions.json").read_text()
    hashes = pd.read_csv(run / "input_hashes.csv")
    some_image = hashes[hashes["roi_id"] != "(manifest)"].iloc[0]
    assert some_image["sha256"] == hashlib.sha256(open(some_image["file"], "rb").read()).hexdigest()
    log = (run / "run.log").read_text()
    assert "stage finished: experiment grid" in log


def test_report_is_complete_and_self_contained(tiny_study):
    _, first, _, _ = tiny_study
    html = first.report_path.read_text()
    # the answer first: the headline, then the study's caveat, then the sections
    assert html.index("Chosen model</dt>") < html.index("A tiny test cohort.") < html.index("Cohort and data quality</h2>")
    for heading in ("Methods", "Results", "ROC curves", "Chosen model", "Explaining the chosen model", "Leakage canary",
                    "Reporting checklist", "Provenance"):
        assert f"{heading}</h2>" in html
    assert not [link for link in re.findall(r'(?:src|href)="([^"]*)"', html) if not link.startswith(("data:", "#"))]
    anchors = set(re.findall(r'id="([^"]+)"', html))
    assert {link[1:] for link in re.findall(r'href="(#[^"]*)"', html)} <= anchors  # every in-report link lands
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 7  # forest plot, ROC, confusion, calibration, DCA, the case gallery
    for data in images:
        Image.open(io.BytesIO(base64.b64decode(data))).verify()
    tables = first.report_path.parent / "tables"
    results = pd.read_csv(tables / "results_long.csv")
    assert set(results.loc[results["status"] == "ok", "source"]) == {"radiomic", "deep"}
    assert "<td class=num>18</td>" in html and "18.000" not in html  # counts print as integers
    assert results["n_patients"].dtype.kind == "i"
    for name in ("table1", "chosen_model_features", "calibration", "tripod_ai_checklist", "case_gallery"):
        assert (tables / f"{name}.csv").exists() and (tables / f"{name}.tex").exists(), name


def test_the_headline_ends_the_run_and_names_the_chosen_model(tiny_study):
    _, first, _, _ = tiny_study
    best = first.best
    label = f"{best['source']} | {best['modalities']} | {best['fusion']} | {best['classifier']}"
    assert first.headline[0].startswith(f"Chosen model: {label}")
    assert first.headline[1] == f"AUC: {best['auc']:.3f} (95% CI {best['auc_ci_low']:.3f}-{best['auc_ci_high']:.3f})"
    assert "Coverage: 18 of 18 patients scored" in first.headline
    assert first.headline[-1].startswith("Leakage canary: ")


def test_a_radiomic_model_is_explained_by_its_features_not_by_grad_cam(tiny_study):
    _, first, _, _ = tiny_study
    tables = first.report_path.parent / "tables"
    gallery = pd.read_csv(tables / "case_gallery.csv")
    assert gallery["patient_id"].is_unique and set(gallery["outcome"]) <= {"TP", "FN", "TN", "FP"}
    html = first.report_path.read_text()
    if first.best["source"] == "radiomic":
        features = pd.read_csv(tables / "chosen_model_features.csv")
        assert len(features) and features["selected in outer folds"].str.endswith("/3").all()
        assert "so no Grad-CAM is shown" in html
        assert not (first.run_dir / "gradcam").exists()
    assert "nan%" not in html


def test_rerun_reuses_every_cached_result(tiny_study):
    _, first, second, _ = tiny_study
    assert second.run_dir != first.run_dir
    log = (second.run_dir / "run.log").read_text()
    assert "radiomic features: 18 ROIs (0 computed, 18 from the store)" in log
    assert "grid: every table read from the store" in log
    # No image is opened again: the manifest's readability check and QA are answered from the store.
    assert "QA: 0 images checked, 18 findings from the store" in log
    assert "QA: 18 images checked, 0 findings from the store" in (first.run_dir / "run.log").read_text()
    pd.testing.assert_frame_equal(first.results.reset_index(drop=True), second.results.reset_index(drop=True),
                                  check_dtype=False)
    assert "final model radiomic | US | single | logistic read from the store" in log
    assert "Its files were read back from the feature store" in (second.run_dir / "report.html").read_text()
    assert "Its files were read back from the feature store" not in (first.run_dir / "report.html").read_text()
    # Everything the cached run wrote is what the first run wrote (its bundle: the very files the first
    # run fitted), except the log, the status, and the stage times and run folder the report names.
    timing = {"run.log", "status.json", "COMPLETE", "report.html", "tables/stage_times.csv", "tables/stage_times.tex"}
    written = sorted(path.relative_to(first.run_dir).as_posix() for path in first.run_dir.rglob("*") if path.is_file())
    assert written == sorted(path.relative_to(second.run_dir).as_posix()
                             for path in second.run_dir.rglob("*") if path.is_file())
    assert {"qa.csv", "input_hashes.csv", "oof_predictions.csv", "model/model.skops", "model/bundle.json"} <= set(written)
    for name in set(written) - timing:
        assert (first.run_dir / name).read_bytes() == (second.run_dir / name).read_bytes(), name

    def without_timing(run_dir):
        html = (run_dir / "report.html").read_text().replace(run_dir.name, "RUN")
        html = html.replace(" (Grid results were read back from the feature store: inputs unchanged since an "
                            "earlier run.)", "")
        html = html.replace(" (Its files were read back from the feature store: an earlier run fitted it on the same "
                            "inputs.)", "")
        start = html.index("Wall and CPU time per stage")
        return html[:start] + html[html.index("</table>", start):]

    assert without_timing(first.run_dir) == without_timing(second.run_dir)


def test_bundle_predicts_like_its_model_on_held_out_patients(tiny_study, tmp_path):
    from dlradiomics.cohort import Cohort
    from dlradiomics.study.features import compute_feature_tables, model_table_for

    folder, first, _, held_out = tiny_study
    held_out.to_csv(tmp_path / "new.csv", index=False)
    bundle = load_bundle(first.bundle_path)
    predictions = predict_manifest(bundle, tmp_path / "new.csv", out_dir=tmp_path / "out",
                                   store_dir=folder / "feature-store")
    assert (predictions["reason"] == "").all()

    cohort = Cohort.from_table(held_out, tmp_path)
    features = compute_feature_tables(cohort, bundle.feature_kinds, store_dir=folder / "feature-store",
                                      radiomics_params=first.run_dir / "radiomics_params.yaml", progress=False)
    table, _, _ = model_table_for(features.tables, bundle.modalities, bundle.feature_kinds)
    expected = pd.Series(bundle.model.predict_proba(table[bundle.feature_columns])[:, 1], index=table.index)
    expected = expected.groupby(level=0).mean()
    got = predictions.set_index("patient_id")["probability"]
    np.testing.assert_allclose(got.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-10)
    assert (predictions["predicted_class"] == (predictions["probability"] >= bundle.threshold)).all()
    assert (tmp_path / "out" / "predictions.csv").is_file()


def test_a_patient_whose_image_fails_gets_a_reason(tiny_study, tmp_path):
    folder, first, _, held_out = tiny_study
    broken = held_out.copy()
    broken_patient = broken["patient_id"].iloc[0]
    broken.loc[broken.index[0], "image"] = str(tmp_path / "missing.png")
    broken.drop(columns="label").to_csv(tmp_path / "new.csv", index=False)
    predictions = predict_manifest(load_bundle(first.bundle_path), tmp_path / "new.csv",
                                   gradcam=False).set_index("patient_id")
    assert np.isnan(predictions.loc[broken_patient, "probability"])
    assert "missing.png" in predictions.loc[broken_patient, "reason"]
    others = predictions.drop(index=broken_patient)
    assert others["probability"].notna().all() and (others["reason"] == "").all()


def test_a_cached_rerun_in_a_fresh_interpreter_fits_nothing_and_imports_no_torch(tiny_study):
    # As a user re-runs a study: a new process, every result in the store. Neither torch (the
    # backbone: every embedding is stored) nor skops (the bundle: its files are stored) is imported.
    import os
    import subprocess
    import sys

    folder, first, _, _ = tiny_study
    script = (
        "import sys\nfrom dlradiomics.api import Study\n"
        f"result = Study.from_yaml({str(folder / 'study.yaml')!r}).run(progress=False)\n"
        "print('run:', result.run_dir)\n"
        "print('imported:', sorted(m for m in ('torch', 'torchvision', 'skops') if m in sys.modules))\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)})
    assert finished.returncode == 0, finished.stderr
    assert "imported: []" in finished.stdout
    run_dir = finished.stdout.split("run: ", 1)[1].splitlines()[0]
    log = open(os.path.join(run_dir, "run.log")).read()
    assert "final model radiomic | US | single | logistic read from the store" in log
    assert open(os.path.join(run_dir, "oof_predictions.csv"), "rb").read() == (first.run_dir / "oof_predictions.csv").read_bytes()
