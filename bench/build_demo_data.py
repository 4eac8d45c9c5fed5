"""Build the embedded demo data (src/dlradiomics/demo/data/) from the public sets in ../shared/data.

Run once by a maintainer: `.venv/bin/python bench/build_demo_data.py`. The output is committed so
that `dlradiomics demo` runs offline. Images are cropped around the lesion (with a margin) to keep
the folder small; crops keep the original pixel values.

Because no public set holds the same people in several modalities, the demo manifest pairs images of
the same label across sets into synthetic patients. This exercises the mechanics of fusion and says
nothing clinical; the demo report says so in its first sentence.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEMO_DATA = REPO_ROOT / "src" / "dlradiomics" / "demo" / "data"
SEED = 20240520
US_PER_CLASS = 20
MG_PER_CLASS = 15
MG_CROP = 256
MARGIN = 24


def crop_to_lesion(image: np.ndarray, mask: np.ndarray, margin: int = MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Crop an image and its mask to the mask's bounding box plus a margin, clipped to the image."""
    rows, cols = np.nonzero(mask)
    top, bottom = max(rows.min() - margin, 0), min(rows.max() + margin + 1, mask.shape[0])
    left, right = max(cols.min() - margin, 0), min(cols.max() + margin + 1, mask.shape[1])
    return image[top:bottom, left:right], mask[top:bottom, left:right]


def save_pair(image: np.ndarray, mask: np.ndarray, folder: Path, stem: str) -> tuple[str, str]:
    """Write an 8-bit greyscale image and a 0/255 mask as PNG; return their paths relative to DEMO_DATA."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    image_path = folder / "images" / f"{stem}.png"
    mask_path = folder / "masks" / f"{stem}.png"
    Image.fromarray(image.astype(np.uint8)).save(image_path, optimize=True)
    Image.fromarray((mask > 0).astype(np.uint8) * 255).save(mask_path, optimize=True)
    return str(image_path.relative_to(DEMO_DATA)), str(mask_path.relative_to(DEMO_DATA))


def build_us(rng: np.random.Generator) -> pd.DataFrame:
    """One image each of 20 benign and 20 malignant BUS-BRA patients, cropped around the lesion."""
    root = SHARED_DATA / "bus-bra"
    table = pd.read_csv(root / "bus_data.csv")
    first_image_per_case = table.drop_duplicates("Case")
    rows = []
    for pathology in ("benign", "malignant"):
        chosen = first_image_per_case[first_image_per_case["Pathology"] == pathology]
        chosen = chosen.iloc[rng.choice(len(chosen), US_PER_CLASS, replace=False)]
        for _, row in chosen.iterrows():
            image = np.asarray(Image.open(root / "Images" / f"{row['ID']}.png").convert("L"))
            mask = np.asarray(Image.open(root / "Masks" / f"{row['ID'].replace('bus_', 'mask_')}.png").convert("L"))
            image, mask = crop_to_lesion(image, mask)
            image_rel, mask_rel = save_pair(image, mask, DEMO_DATA / "us", row["ID"])
            rows.append({"label": int(pathology == "malignant"), "image": image_rel, "mask": mask_rel,
                         "source": f"BUS-BRA {row['ID']} (case {row['Case']})"})
    return pd.DataFrame(rows)


def build_mg(rng: np.random.Generator) -> pd.DataFrame:
    """15 benign and 15 malignant mini-MIAS lesions: 256x256 crops centred on the lesion, circle masks."""
    root = SHARED_DATA / "mini-mias"
    records = []
    for line in (root / "Info.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 7 and parts[0].startswith("mdb") and parts[3] in {"B", "M"}:
            records.append({"reference": parts[0], "severity": parts[3], "x": int(parts[4]),
                            "y": int(parts[5]), "radius": int(parts[6])})
    lesions = pd.DataFrame(records).drop_duplicates("reference")
    # Lesions wider than the crop would lose their edges; the demo keeps those that fit.
    lesions = lesions[lesions["radius"] < MG_CROP // 2 - 8]
    rows = []
    for severity in ("B", "M"):
        chosen = lesions[lesions["severity"] == severity]
        chosen = chosen.iloc[rng.choice(len(chosen), MG_PER_CLASS, replace=False)]
        for _, lesion in chosen.iterrows():
            image = np.asarray(Image.open(root / "images" / f"{lesion['reference']}.png").convert("L"))
            centre_row = image.shape[0] - 1 - lesion["y"]  # Info.txt counts y from the bottom-left corner
            centre_col = lesion["x"]
            top = int(np.clip(centre_row - MG_CROP // 2, 0, image.shape[0] - MG_CROP))
            left = int(np.clip(centre_col - MG_CROP // 2, 0, image.shape[1] - MG_CROP))
            grid_rows, grid_cols = np.ogrid[: image.shape[0], : image.shape[1]]
            circle = (grid_rows - centre_row) ** 2 + (grid_cols - centre_col) ** 2 <= lesion["radius"] ** 2
            crop = image[top : top + MG_CROP, left : left + MG_CROP]
            crop_mask = circle[top : top + MG_CROP, left : left + MG_CROP]
            image_rel, mask_rel = save_pair(crop, crop_mask, DEMO_DATA / "mg", lesion["reference"])
            rows.append({"label": int(severity == "M"), "image": image_rel, "mask": mask_rel,
                         "source": f"mini-MIAS {lesion['reference']} ({severity})"})
    return pd.DataFrame(rows)


def build_mr() -> pd.DataFrame:
    """All 24 BreastDM sample slices (4 benign, 20 malignant), cropped around the lesion."""
    root = SHARED_DATA / "breastdm-mri-samples"
    rows = []
    for _, row in pd.read_csv(root / "labels.csv").iterrows():
        image = np.asarray(Image.open(root / row["image"]).convert("L"))
        mask = np.asarray(Image.open(root / row["mask"]).convert("L"))
        image, mask = crop_to_lesion(image, mask)
        image_rel, mask_rel = save_pair(image, mask, DEMO_DATA / "mr", row["id"])
        rows.append({"label": int(row["pathology"] == "malignant"), "image": image_rel, "mask": mask_rel,
                     "source": f"BreastDM sample {row['id']}"})
    return pd.DataFrame(rows)


def pair_into_patients(us: pd.DataFrame, mg: pd.DataFrame, mr: pd.DataFrame,
                       rng: np.random.Generator) -> pd.DataFrame:
    """Give every US image a synthetic patient and attach MG and MR images of the same label.

    Patients get the other modalities in shuffled order, so some have all three, some two, some
    only ultrasound: the demo needs patients with a missing modality for late fusion.
    """
    rows = []
    for label in (0, 1):
        us_rows = us[us["label"] == label].sample(frac=1, random_state=int(rng.integers(1 << 31)))
        patient_ids = [f"demo_{'m' if label else 'b'}{index:02d}" for index in range(1, len(us_rows) + 1)]
        for modality, frame in (("US", us_rows), ("MG", mg[mg["label"] == label]), ("MRI", mr[mr["label"] == label])):
            frame = frame.sample(frac=1, random_state=int(rng.integers(1 << 31)))
            if modality == "MG":
                # Start MG from the end so that MG and MR coverage overlap only partly.
                owners = patient_ids[::-1][: len(frame)]
            else:
                owners = patient_ids[: len(frame)]
            for owner, (_, item) in zip(owners, frame.iterrows()):
                rows.append({"patient_id": owner, "modality": modality, "image": item["image"],
                             "mask": item["mask"], "label": label, "source": item["source"]})
    return pd.DataFrame(rows).sort_values(["patient_id", "modality"]).reset_index(drop=True)


def main() -> None:
    """Rebuild demo/data from scratch."""
    for sub in ("us", "mg", "mr"):
        shutil.rmtree(DEMO_DATA / sub, ignore_errors=True)
    DEMO_DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    manifest = pair_into_patients(build_us(rng), build_mg(rng), build_mr(), rng)
    manifest.to_csv(DEMO_DATA / "manifest.csv", index=False)
    shutil.copy(SHARED_DATA / "bus-bra" / "LICENSE.txt", DEMO_DATA / "us" / "LICENSE.txt")
    shutil.copy(SHARED_DATA / "mini-mias" / "Licence.txt", DEMO_DATA / "mg" / "Licence.txt")
    print(manifest.groupby(["modality", "label"]).size())
    print(manifest.groupby("patient_id")["modality"].apply(lambda m: "+".join(sorted(m))).value_counts())


if __name__ == "__main__":
    main()
