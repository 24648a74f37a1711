#!/usr/bin/env bash
# Build dist/faceapp_<version>_<arch>.deb from the PyInstaller bundle in dist/faceapp.
#   bash packaging/linux/build_deb.sh [BUNDLE_DIR] [OUT_DIR]
# Layout: /opt/faceapp (the bundle), /usr/bin/faceapp, a desktop entry, icons, docs.
# Depends: the system libraries the bundle does not carry, found with readelf + dpkg -S.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUNDLE=${1:-$ROOT/dist/faceapp}
OUT=${2:-$ROOT/dist}
[ -x "$BUNDLE/faceapp" ] || { echo "no bundle at $BUNDLE (run packaging/build.sh)" >&2; exit 1; }

VERSION=$("$BUNDLE/faceapp" --version | awk '{print $2}')
ARCH=$(dpkg --print-architecture)
PKG=$ROOT/build/deb/faceapp_${VERSION}_${ARCH}
rm -rf "$PKG"
mkdir -p "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/usr/share/applications" \
  "$PKG/usr/share/icons/hicolor/scalable/apps" "$PKG/usr/share/icons/hicolor/256x256/apps" \
  "$PKG/usr/share/doc/faceapp"
cp -a "$BUNDLE" "$PKG/opt/faceapp"
install -m 0755 "$HERE/faceapp.sh" "$PKG/usr/bin/faceapp"
install -m 0644 "$HERE/faceapp.desktop" "$PKG/usr/share/applications/faceapp.desktop"
install -m 0644 "$ROOT/resources/icons/faceapp.svg" "$PKG/usr/share/icons/hicolor/scalable/apps/faceapp.svg"
install -m 0644 "$ROOT/resources/icons/faceapp.png" "$PKG/usr/share/icons/hicolor/256x256/apps/faceapp.png"
install -m 0644 "$HERE/README.Debian" "$PKG/usr/share/doc/faceapp/README.Debian"
# a door that survives crashes and reboots: installed, never enabled by the package (README "Wiring a door")
install -D -m 0644 "$HERE/faceapp-door.service" "$PKG/usr/lib/systemd/system/faceapp-door.service"
install -D -m 0644 "$HERE/faceapp-kiosk.service" "$PKG/usr/lib/systemd/user/faceapp-kiosk.service"
install -D -m 0644 "$HERE/faceapp-door-autostart.desktop" "$PKG/usr/share/faceapp/faceapp-door-autostart.desktop"
cat > "$PKG/usr/share/doc/faceapp/copyright" <<TXT
faceapp: MIT licence. The bundle also carries third-party software under its own licences:
CPython (PSF), Qt 6 / PySide6 (LGPLv3), ONNX Runtime (MIT), OpenCV (Apache-2.0), NumPy (BSD),
Pillow (MIT-CMU), SQLAlchemy and Alembic (MIT), faiss (MIT) with OpenBLAS (BSD-3-Clause) and the
GCC runtime libraries libgomp, libgfortran, libquadmath (GPLv3 with the runtime exception); the
models: MTCNN weights of facenet-pytorch (MIT) and dlib's face ResNet (CC0 / Boost), converted;
see /opt/faceapp/_internal/resources/models.
TXT
find "$PKG" -type d -exec chmod 0755 {} +

# -- Depends: libraries the bundle needs from the system ----------------------------------
elfs=$(find "$PKG/opt/faceapp" -type f \( -name '*.so*' -o -perm -u+x \) -exec sh -c 'head -c4 "$1" | grep -q ELF && echo "$1"' _ {} \;)
bundled=$(find "$PKG/opt/faceapp" -name '*.so*' -printf '%f\n' | sort -u)
needed=$(echo "$elfs" | xargs -r readelf -d 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u)
system=$(comm -23 <(echo "$needed") <(echo "$bundled"))
deps=() ; missing=()
for so in $system; do
  # the readers take all their input: one that exits early may kill the writer with SIGPIPE,
  # which pipefail and set -e turn into a failed build (seen once on a busy machine: exit 141)
  path=$(ldconfig -p | awk -v s="$so" '!found && $1==s && /x86-64|AArch64/ {print $NF; found=1}')
  pkg=""
  case "$so" in ld-linux*|libc.so*|libm.so*|libdl.so*|libpthread.so*|libresolv.so*|librt.so*) continue ;; esac
  if [ -n "$path" ]; then
    real=$(readlink -f "$path")
    for cand in "$path" "$real" "${real#/usr}" "/usr${path}"; do  # usrmerge: dpkg knows one of them
      pkg=$(dpkg -S "$cand" 2>/dev/null | sed -n '1s/:.*//p') && [ -n "$pkg" ] && break
    done
  fi
  if [ -n "$pkg" ]; then deps+=("$pkg"); else missing+=("$so"); fi
done
glibc=$(echo "$elfs" | xargs -r objdump -T 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
depends="libc6 (>= $glibc)"
for p in $(printf '%s\n' "${deps[@]}" | sort -u); do
  case "$p" in libc6|libc6:*|libwayland-*|libgtk-3*) ;; *) depends="$depends, ${p%%:*}" ;; esac  # wayland/gtk: optional plugins
done
echo "[deb] from the system: $(echo $system)" >&2
[ ${#missing[@]} -eq 0 ] || echo "[deb] not on this machine (optional Qt plugins: gtk3 theme, wayland): ${missing[*]}" >&2

installed_kb=$(du -sk --apparent-size "$PKG" | cut -f1)
cat > "$PKG/DEBIAN/control" <<TXT
Package: faceapp
Version: $VERSION
Architecture: $ARCH
Maintainer: faceapp developers <faceapp@localhost>
Installed-Size: $installed_kb
Depends: $depends
Recommends: libwayland-client0, libwayland-cursor0, libwayland-egl1
Section: graphics
Priority: optional
Homepage: https://localhost/faceapp
Description: face verification at the door (desktop app and command line)
 Enroll a person from one photo; later a camera frame or a photo is checked
 against the claimed person (1:1) or against everybody (1:K). MTCNN finds the
 face and 5 landmarks, a face ResNet encodes it, SQLite keeps enrollments and
 the access log. Self-contained: no Python and no internet needed; the
 networks run on the CPU with ONNX Runtime.
 .
 'apt remove' keeps each user's data (~/.local/share/faceapp); 'apt purge'
 deletes it (see /usr/share/doc/faceapp/README.Debian).
TXT
install -m 0755 "$HERE/postinst" "$PKG/DEBIAN/postinst"
install -m 0755 "$HERE/postrm" "$PKG/DEBIAN/postrm"

mkdir -p "$OUT"
DEB=$OUT/faceapp_${VERSION}_${ARCH}.deb
# zstd -9 (default): ~170 MB in under a minute; FACEAPP_DEB_COMPRESS=xz: ~145 MB, ~10 min on 2 cores.
# Both need dpkg >= 1.21.18 for zstd (Debian 12, Ubuntu 21.10 and later), which the bundle's glibc needs anyway.
case "${FACEAPP_DEB_COMPRESS:-zstd}" in
  xz)   comp=(-Zxz -z6) ;;
  zstd) comp=(-Zzstd -z9) ;;
  *)    echo "FACEAPP_DEB_COMPRESS must be zstd or xz" >&2; exit 2 ;;
esac
dpkg-deb --root-owner-group "${comp[@]}" --build "$PKG" "$DEB" >&2
rm -rf "$PKG"
echo "$DEB"
