#!/usr/bin/env bash
# Fetches ten freely licensed photographs for image_quality sweeps into a cache directory, once, and prints
# the directory. They come from the scikit-image 0.25.2 wheel on PyPI (its skimage/data folder), pinned by
# file and SHA-256, so every machine gets the same bytes; nothing of them is committed to this repository.
#
#   scripts/photos.sh [DIR]      DIR defaults to $CVATBENCH_PHOTOS, else ~/.cache/cvatbench/photos-skimage-0.25.2
#
# Licences, from the docstrings of skimage.data (skimage/data/_fetchers.py in the same wheel):
#   astronaut.png          NASA (Eileen Collins), public domain
#   camera.png             Lav Varshney, CC0
#   coffee.png             Rachel Michetti (Pikolo Espresso Bar), CC0
#   chelsea.png            Stefan van der Walt, CC0
#   rocket.jpg             SpaceX (DSCOVR launch), public domain
#   hubble_deep_field.jpg  NASA (Hubble eXtreme Deep Field), public domain
#   retina.jpg             Mikael Häggström, CC0
#   brick.png gravel.png grass.png   textures from CC0Textures / DeviantArt, CC0
# The directory holds the images only, and two hidden files (.LICENSES.txt, .complete) that --images-dir skips.
# Needs python3 with pip (any version: the platform flags pin one wheel whatever the host).
set -euo pipefail

dest=${1:-${CVATBENCH_PHOTOS:-$HOME/.cache/cvatbench/photos-skimage-0.25.2}}
if [ -f "$dest/.complete" ]; then
	echo "$dest"
	exit 0
fi
wheel=scikit_image-0.25.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
sha256=a17e17eb8562660cc0d31bb55643a4da996a81944b82c54805c91b3fe66f4824
members="astronaut.png camera.png coffee.png chelsea.png rocket.jpg hubble_deep_field.jpg retina.jpg brick.png gravel.png grass.png"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "photos: downloading $wheel (15 MB) from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
	--python-version 3.12 --implementation cp --dest "$tmp" scikit-image==0.25.2 >&2
got=$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
	echo "photos: $wheel has SHA-256 $got, want $sha256" >&2
	exit 1
fi
mkdir -p "$dest"
python3 - "$tmp/$wheel" "$dest" $members <<'PY'
import os, sys, zipfile
wheel, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for n in names:
        data = z.read("skimage/data/" + n)
        with open(os.path.join(dest, n), "wb") as f:
            f.write(data)
PY
sed -n '/^# Licences/,/^# The directory/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >"$dest/.LICENSES.txt"
touch "$dest/.complete"
echo "$dest"
