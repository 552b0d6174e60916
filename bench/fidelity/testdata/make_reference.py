"""Writes the SSIM/PSNR reference pairs of fidelity_test.go and their values from scikit-image.

The images are synthetic (seeded noise, gradients and shapes drawn here), so nothing third-party is committed.
Run from this directory with scikit-image 0.25.2 (numpy, scipy and Pillow come with it):

    python -m venv /tmp/sk && /tmp/sk/bin/pip install scikit-image==0.25.2
    /tmp/sk/bin/python make_reference.py

reference.json holds, per pair, structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255), which is Wang et al. 2004's ssim_index.m, and
peak_signal_noise_ratio(data_range=255) (null when infinite), both on the 8-bit grey values as stored.
"""

import io
import json

import numpy as np
import skimage
from PIL import Image, ImageFilter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def base(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = 96 + 60 * np.sin(x / 7.0) * np.cos(y / 11.0) + 0.4 * x - 0.3 * y
    img[(x - w / 3) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 4) ** 2] += 70  # a disc with sharp edges
    img[h // 5 : h // 5 + 6, :] = 20  # a dark bar
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def jpeg(a, q):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))


def pairs():
    a = base(96, 64, 1)
    rng = np.random.default_rng(2)
    yield "identical", a, a.copy()
    yield "jpeg-q10", a, jpeg(a, 10)
    yield "jpeg-q50", a, jpeg(a, 50)
    yield "jpeg-q90", a, jpeg(a, 90)
    yield "noise-sigma20", a, np.clip(a + rng.normal(0, 20, a.shape), 0, 255).round().astype(np.uint8)
    yield "blur-r2", a, np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(2)))
    yield "brighter-15", a, np.clip(a.astype(int) + 15, 0, 255).astype(np.uint8)
    yield "inverted", a, 255 - a
    small = base(23, 17, 3)  # odd sides, barely more than the 11x11 window
    yield "small-noise", small, np.clip(small + rng.normal(0, 10, small.shape), 0, 255).round().astype(np.uint8)


def main():
    ref = {"generator": "scikit-image " + skimage.__version__, "pairs": []}
    for name, a, b in pairs():
        Image.fromarray(a).save(name + ".a.png")
        Image.fromarray(b).save(name + ".b.png")
        ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
        psnr = peak_signal_noise_ratio(a, b, data_range=255) if not np.array_equal(a, b) else None
        ref["pairs"].append({"name": name, "ssim": float(ssim), "psnr_db": None if psnr is None else float(psnr)})
    with open("reference.json", "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
