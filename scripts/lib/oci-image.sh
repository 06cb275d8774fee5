# Shared by scripts/build-test-images and scripts/build-image (sourced, not run): fetching
# Debian packages into a cache, unpacking them into a rootfs, and writing a rootfs as a
# reproducible OCI archive. The caller sets `cache` (the .deb cache) and `work` (a scratch
# folder it removes) before using them.

for tool in apt-get dpkg-deb sha256sum tar gzip; do
    command -v "$tool" >/dev/null || { echo "$(basename "$0"): $tool is missing (a Debian system is needed)" >&2; exit 1; }
done

# Downloads the newest candidate of each package into the cache (once per version).
fetch() {
    local missing=()
    for pkg in "$@"; do
        local version file
        version="$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')"
        if [[ -z "$version" || "$version" == "(none)" ]]; then
            echo "$(basename "$0"): no Debian package $pkg (run apt-get update)" >&2
            exit 1
        fi
        file="$(printf '%s_%s_' "$pkg" "${version//:/%3a}")"
        compgen -G "$cache/debs/$file*.deb" >/dev/null || missing+=("$pkg=$version")
    done
    if ((${#missing[@]})); then
        (cd "$cache/debs" && apt-get -o APT::Sandbox::User=root download -q "${missing[@]}" >/dev/null)
    fi
}

# Unpacks the cached .debs of the named packages into a rootfs.
unpack() {
    local rootfs="$1"
    shift
    for pkg in "$@"; do
        local version
        version="$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')"
        dpkg-deb -x "$(ls "$cache/debs/${pkg}_${version//:/%3a}_"*.deb | head -n1)" "$rootfs"
    done
}

base_files() {
    local rootfs="$1"
    mkdir -p "$rootfs"/{etc,tmp,root,proc,sys,dev,run,var/tmp}
    chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
    chmod 700 "$rootfs/root"
    cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
    cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
www-data:x:33:
nogroup:x:65534:
GROUP
    echo "hosts: files dns" >"$rootfs/etc/nsswitch.conf"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Turns a rootfs into an OCI archive: one gzip layer, a config, a manifest, index.json.
# Args: rootfs name tarball config-json-fragment (Entrypoint/Cmd/Env/ExposedPorts …)
oci_archive() {
    local rootfs="$1" name="$2" tarball="$3" fragment="$4"
    local layout="$work/layout-$(basename "$tarball" .tar)"
    mkdir -p "$layout/blobs/sha256"
    find "$rootfs" -exec touch -h -d @0 {} +
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
        -C "$rootfs" -cf "$work/layer.tar" .
    local diff_id size layer config manifest
    diff_id="$(sha "$work/layer.tar")"
    gzip -n "-${gzip_level:-9}" <"$work/layer.tar" >"$work/layer.tar.gz"
    layer="$(sha "$work/layer.tar.gz")"
    size="$(stat -c %s "$work/layer.tar.gz")"
    mv "$work/layer.tar.gz" "$layout/blobs/sha256/$layer"
    rm -f "$work/layer.tar"
    printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":{%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/%s"}]}' \
        "$oci_arch" "$fragment" "$diff_id" "$(basename "$0")" >"$work/config.json"
    config="$(sha "$work/config.json")"
    local config_size
    config_size="$(stat -c %s "$work/config.json")"
    mv "$work/config.json" "$layout/blobs/sha256/$config"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
        "$config" "$config_size" "$layer" "$size" >"$work/manifest.json"
    manifest="$(sha "$work/manifest.json")"
    local manifest_size
    manifest_size="$(stat -c %s "$work/manifest.json")"
    mv "$work/manifest.json" "$layout/blobs/sha256/$manifest"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
        "$manifest" "$manifest_size" "$oci_arch" "$name" "${name##*:}" >"$layout/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
    find "$layout" -exec touch -h -d @0 {} +
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
        -C "$layout" -cf "$tarball.tmp" oci-layout index.json blobs
    mv "$tarball.tmp" "$tarball"
    echo "$tarball: $name (manifest sha256:$manifest)"
}

# The images are for this machine: Debian's architecture names are OCI's, except armhf.
oci_arch="$(dpkg --print-architecture)"
[[ $oci_arch == armhf ]] && oci_arch=arm
multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")"

path_env='"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
