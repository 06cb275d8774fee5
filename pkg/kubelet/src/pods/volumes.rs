//! The pod's volumes under `<root>/pods/<uid>/volumes/<plugin>/<name>`, as upstream's
//! volume plugins lay them out: emptyDir (`medium: Memory` on tmpfs), hostPath,
//! configMap, secret (on tmpfs, never on disk), downwardAPI and projected (on tmpfs:
//! serviceAccountToken through the TokenRequest API, configMap, secret and downwardAPI
//! sources). Set up again on every sync, so their files follow their sources; files are
//! replaced by rename so a reader never sees half of one.
//!
//! persistentVolumeClaim resolves the claim to its bound PersistentVolume and uses that
//! volume's `hostPath` or `local` folder on this node (what the local-path provisioner
//! makes); a claim not bound yet keeps the pod `ContainerCreating` with upstream's
//! `FailedMount` event. Other volume types (network and CSI volumes) are not built: a
//! pod using one stays `ContainerCreating` with a `FailedMount` event saying so.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{
    Container as SpecContainer, DownwardAPIVolumeFile, KeyToPath, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, ServiceAccount, Volume,
};
use kube::api::{Api, PostParams};
use serde_json::json;

use super::Ctx;
use super::spec::{self, ConfigError, Sources};
use crate::runtime::Mount;

/// Where `volume` of plugin `plugin` lives in the pod's folder.
fn volume_dir(pod_dir: &Path, plugin: &str, name: &str) -> PathBuf {
    pod_dir
        .join("volumes")
        .join(format!("kubernetes.io~{plugin}"))
        .join(name)
}

fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| mp == want)
}

/// Mounts a tmpfs at `dir` unless one is there.
fn ensure_tmpfs(dir: &Path, size: Option<i64>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if is_mounted(dir) {
        return Ok(());
    }
    let mut opts = "mode=0755".to_string();
    if let Some(size) = size.filter(|s| *s > 0) {
        opts.push_str(&format!(",size={size}"));
    }
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(opts.as_str()),
    )
    .map_err(|e| format!("cannot mount a tmpfs at {}: {e}", dir.display()))
}

/// Writes `files` (relative path → bytes, mode) into `dir` and removes files no longer in
/// the set. Changes go through a rename, so readers see old or new files, never a mix of
/// one file.
fn write_files(dir: &Path, files: &BTreeMap<String, (Vec<u8>, u32)>) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (rel, (content, mode)) in files {
        if rel.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(format!("invalid path {rel:?}"));
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let same = std::fs::read(&path).ok().as_deref() == Some(content.as_slice());
        if !same {
            let tmp = path.with_file_name(format!(
                ".{}.tmp",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            std::fs::write(&tmp, content)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode));
    }
    // Keys removed from the source disappear.
    remove_stale(dir, dir, files);
    Ok(())
}

fn remove_stale(root: &Path, dir: &Path, keep: &BTreeMap<String, (Vec<u8>, u32)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            remove_stale(root, &path, keep);
            if !keep.keys().any(|k| k.starts_with(&format!("{rel}/"))) {
                let _ = std::fs::remove_dir_all(&path);
            }
        } else if !keep.contains_key(&rel) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn mode_of(item: Option<i32>, default: Option<i32>) -> u32 {
    u32::try_from(item.or(default).unwrap_or(0o644)).unwrap_or(0o644)
}

/// Files of a key→bytes source, all keys or the `items` chosen.
fn project(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: bool,
    what: &str,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
    let mut out = BTreeMap::new();
    match items {
        Some(items) if !items.is_empty() => {
            for it in items {
                match data.get(&it.key) {
                    Some(v) => {
                        out.insert(it.path.clone(), (v.clone(), mode_of(it.mode, default_mode)));
                    }
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configmap references non-existent config key: {}",
                            it.key
                        )
                        .replace("configmap", what));
                    }
                }
            }
        }
        _ => {
            for (k, v) in data {
                out.insert(k.clone(), (v.clone(), mode_of(None, default_mode)));
            }
        }
    }
    Ok(out)
}

fn downward_files(
    ctx: &Ctx,
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: Option<i32>,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
    let mut out = BTreeMap::new();
    let ips: Vec<std::net::IpAddr> = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ips.as_ref())
        .map(|l| l.iter().filter_map(|p| p.ip.parse().ok()).collect())
        .unwrap_or_default();
    for it in items {
        let value = if let Some(f) = &it.field_ref {
            match f.field_path.as_str() {
                "metadata.labels" | "metadata.annotations" => {
                    let map = if f.field_path == "metadata.labels" {
                        pod.metadata.labels.clone()
                    } else {
                        pod.metadata.annotations.clone()
                    };
                    map.unwrap_or_default()
                        .iter()
                        .map(|(k, v)| format!("{k}={}\n", serde_json::Value::String(v.clone())))
                        .collect::<String>()
                }
                path => {
                    spec::field_value(pod, path, &ctx.facts, &ips).map_err(|ConfigError(m)| m)?
                }
            }
        } else if let Some(r) = &it.resource_field_ref {
            let spec = pod.spec.clone().unwrap_or_default();
            let name = r.container_name.clone().unwrap_or_default();
            let c = spec
                .containers
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| format!("container {name:?} not found in the pod"))?;
            spec::resource_value(
                c,
                &r.resource,
                r.divisor.as_ref().map(|d| d.0.as_str()),
                &ctx.facts,
            )
            .map_err(|ConfigError(m)| m)?
        } else {
            continue;
        };
        out.insert(
            it.path.clone(),
            (value.into_bytes(), mode_of(it.mode, default_mode)),
        );
    }
    Ok(out)
}

/// A service account token for the pod from the TokenRequest API, renewed once 80% of its
/// life has passed (the file's age tells).
async fn token(
    ctx: &Ctx,
    pod: &Pod,
    file: &Path,
    audience: Option<String>,
    expiration: Option<i64>,
) -> Result<Vec<u8>, String> {
    let expiration = expiration.unwrap_or(3600).max(600);
    if let Ok(meta) = std::fs::metadata(file)
        && let Ok(age) = meta.modified().map(|m| m.elapsed().unwrap_or_default())
        && age.as_secs_f64() < expiration as f64 * 0.8
        && let Ok(old) = std::fs::read(file)
        && !old.is_empty()
    {
        return Ok(old);
    }
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let own = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty());
    let sa = own.clone().unwrap_or_else(|| "default".into());
    // Bound to the pod when the pod names its service account (the API checks they match).
    let bound = own.map(|_| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "name": pod.metadata.name, "uid": pod.metadata.uid})
    });
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &ns);
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": audience.map(|a| vec![a]).unwrap_or_default(),
            "expirationSeconds": expiration,
            "boundObjectRef": bound,
        },
    }))
    .map_err(|e| format!("token request: {e}"))?;
    let answer = api
        .create_token_request(&sa, &PostParams::default(), &request)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) => format!("failed to fetch token: {}", s.message),
            other => format!("failed to fetch token: {other}"),
        })?;
    answer
        .status
        .map(|s| s.token.into_bytes())
        .ok_or_else(|| "failed to fetch token: no token in the answer".to_string())
}

/// Upstream's message when a claim cannot be used yet (the volume manager's
/// "failed to process volumes").
fn unprocessed(name: &str, ns: &str, claim: &str, why: impl std::fmt::Display) -> String {
    format!(
        "Unable to attach or mount volumes: unmounted volumes=[{name}], unattached volumes=[], failed to process volumes=[{name}]: error processing PVC {ns}/{claim}: {why}"
    )
}

/// The folder of the PersistentVolume bound to the claim: its `hostPath` (created
/// when its type asks) or its `local` path.
async fn claim_path(
    ctx: &Ctx,
    pod: &Pod,
    name: &str,
    source: &PersistentVolumeClaimVolumeSource,
) -> Result<PathBuf, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let claim_name = &source.claim_name;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let claim = match claims.get_opt(claim_name).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(unprocessed(
                name,
                &ns,
                claim_name,
                format!(
                    "failed to fetch PVC from API server: persistentvolumeclaims \"{claim_name}\" not found"
                ),
            ));
        }
        Err(e) => {
            return Err(unprocessed(
                name,
                &ns,
                claim_name,
                format!("failed to fetch PVC from API server: {e}"),
            ));
        }
    };
    let volume_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
    if volume_name.is_empty() || phase != Some("Bound") {
        return Err(unprocessed(name, &ns, claim_name, "PVC is not bound"));
    }
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let pv = match volumes.get_opt(&volume_name).await {
        Ok(Some(pv)) => pv,
        Ok(None) => {
            return Err(unprocessed(
                name,
                &ns,
                claim_name,
                format!(
                    "failed to fetch PV {volume_name} from API server: persistentvolumes \"{volume_name}\" not found"
                ),
            ));
        }
        Err(e) => {
            return Err(unprocessed(
                name,
                &ns,
                claim_name,
                format!("failed to fetch PV {volume_name} from API server: {e}"),
            ));
        }
    };
    let spec = pv.spec.unwrap_or_default();
    if let Some(h) = &spec.host_path {
        let path = PathBuf::from(&h.path);
        match h.type_.as_deref().unwrap_or_default() {
            "DirectoryOrCreate" => {
                std::fs::create_dir_all(&path).map_err(|e| failed(&volume_name, e))?;
                use std::os::unix::fs::PermissionsExt;
                // As the local-path provisioner makes its folders: writable by any user.
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777));
            }
            "Directory" if !path.is_dir() => {
                return Err(failed(
                    &volume_name,
                    format!("hostPath type check failed: {} is not a directory", h.path),
                ));
            }
            _ => {}
        }
        return Ok(path);
    }
    if let Some(l) = &spec.local {
        let path = PathBuf::from(&l.path);
        if !path.exists() {
            return Err(failed(
                &volume_name,
                format!("mount failed: stat {}: no such file or directory", l.path),
            ));
        }
        return Ok(path);
    }
    Err(failed(
        &volume_name,
        "this volume type is not supported by k1s (a PersistentVolume must be hostPath or local)",
    ))
}

/// The volumes every mount of which is read-only (a claim used with `readOnly`).
fn read_only_volumes(pod: &Pod) -> HashSet<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.read_only == Some(true))
        })
        .map(|v| v.name.clone())
        .collect()
}

fn failed(name: &str, msg: impl std::fmt::Display) -> String {
    format!("MountVolume.SetUp failed for volume \"{name}\" : {msg}")
}

async fn setup_one(
    ctx: &Ctx,
    pod: &Pod,
    pod_dir: &Path,
    v: &Volume,
    sources: &mut Sources,
) -> Result<PathBuf, String> {
    let name = &v.name;
    if let Some(e) = &v.empty_dir {
        let dir = volume_dir(pod_dir, "empty-dir", name);
        if e.medium.as_deref() == Some("Memory") {
            let size = e
                .size_limit
                .as_ref()
                .and_then(|q| k1s_apimachinery::Quantity::parse(&q.0).ok())
                .map(|q| q.value());
            ensure_tmpfs(&dir, size).map_err(|m| failed(name, m))?;
        } else {
            std::fs::create_dir_all(&dir).map_err(|e| failed(name, e))?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        }
        return Ok(dir);
    }
    if let Some(h) = &v.host_path {
        let path = PathBuf::from(&h.path);
        let kind = h.type_.clone().unwrap_or_default();
        let check = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(failed(
                    name,
                    format!("hostPath type check failed: {} is not a {what}", h.path),
                ))
            }
        };
        match kind.as_str() {
            "DirectoryOrCreate" => {
                std::fs::create_dir_all(&path).map_err(|e| failed(name, e))?;
            }
            "FileOrCreate" if !path.exists() => {
                if let Some(p) = path.parent() {
                    std::fs::create_dir_all(p).map_err(|e| failed(name, e))?;
                }
                std::fs::write(&path, b"").map_err(|e| failed(name, e))?;
            }
            "Directory" => check(path.is_dir(), "directory")?,
            "File" => check(path.is_file(), "file")?,
            "Socket" | "CharDevice" | "BlockDevice" => check(path.exists(), &kind.to_lowercase())?,
            _ => {}
        }
        return Ok(path);
    }
    if let Some(c) = &v.persistent_volume_claim {
        return claim_path(ctx, pod, name, c).await;
    }
    if let Some(cm) = &v.config_map {
        let dir = volume_dir(pod_dir, "configmap", name);
        let optional = cm.optional.unwrap_or(false);
        let data = match sources
            .config_map(&cm.name)
            .await
            .map_err(|ConfigError(m)| failed(name, m))?
        {
            Some(obj) => spec::config_map_data(&obj),
            None if optional => BTreeMap::new(),
            None => return Err(failed(name, format!("configmap \"{}\" not found", cm.name))),
        };
        let files = project(
            &data,
            cm.items.as_ref(),
            cm.default_mode,
            optional,
            "configmap",
        )
        .map_err(|m| failed(name, m))?;
        write_files(&dir, &files).map_err(|m| failed(name, m))?;
        return Ok(dir);
    }
    if let Some(s) = &v.secret {
        let dir = volume_dir(pod_dir, "secret", name);
        let optional = s.optional.unwrap_or(false);
        let secret_name = s.secret_name.clone().unwrap_or_default();
        let data = match sources
            .secret(&secret_name)
            .await
            .map_err(|ConfigError(m)| failed(name, m))?
        {
            Some(obj) => spec::secret_data(&obj),
            None if optional => BTreeMap::new(),
            None => return Err(failed(name, format!("secret \"{secret_name}\" not found"))),
        };
        ensure_tmpfs(&dir, None).map_err(|m| failed(name, m))?;
        let files = project(&data, s.items.as_ref(), s.default_mode, optional, "secret")
            .map_err(|m| failed(name, m))?;
        write_files(&dir, &files).map_err(|m| failed(name, m))?;
        return Ok(dir);
    }
    if let Some(d) = &v.downward_api {
        let dir = volume_dir(pod_dir, "downward-api", name);
        let files = downward_files(
            ctx,
            pod,
            d.items.as_deref().unwrap_or_default(),
            d.default_mode,
        )
        .map_err(|m| failed(name, m))?;
        write_files(&dir, &files).map_err(|m| failed(name, m))?;
        return Ok(dir);
    }
    if let Some(p) = &v.projected {
        let dir = volume_dir(pod_dir, "projected", name);
        ensure_tmpfs(&dir, None).map_err(|m| failed(name, m))?;
        let mut files = BTreeMap::new();
        for src in p.sources.iter().flatten() {
            if let Some(cm) = &src.config_map {
                let optional = cm.optional.unwrap_or(false);
                let data = match sources
                    .config_map(&cm.name)
                    .await
                    .map_err(|ConfigError(m)| failed(name, m))?
                {
                    Some(obj) => spec::config_map_data(&obj),
                    None if optional => continue,
                    None => {
                        return Err(failed(name, format!("configmap \"{}\" not found", cm.name)));
                    }
                };
                files.extend(
                    project(
                        &data,
                        cm.items.as_ref(),
                        p.default_mode,
                        optional,
                        "configmap",
                    )
                    .map_err(|m| failed(name, m))?,
                );
            }
            if let Some(s) = &src.secret {
                let optional = s.optional.unwrap_or(false);
                let data = match sources
                    .secret(&s.name)
                    .await
                    .map_err(|ConfigError(m)| failed(name, m))?
                {
                    Some(obj) => spec::secret_data(&obj),
                    None if optional => continue,
                    None => return Err(failed(name, format!("secret \"{}\" not found", s.name))),
                };
                files.extend(
                    project(&data, s.items.as_ref(), p.default_mode, optional, "secret")
                        .map_err(|m| failed(name, m))?,
                );
            }
            if let Some(d) = &src.downward_api {
                files.extend(
                    downward_files(
                        ctx,
                        pod,
                        d.items.as_deref().unwrap_or_default(),
                        p.default_mode,
                    )
                    .map_err(|m| failed(name, m))?,
                );
            }
            if let Some(t) = &src.service_account_token {
                let file = dir.join(&t.path);
                let tok = token(ctx, pod, &file, t.audience.clone(), t.expiration_seconds)
                    .await
                    .map_err(|m| failed(name, m))?;
                files.insert(t.path.clone(), (tok, mode_of(None, p.default_mode)));
            }
            if src.cluster_trust_bundle.is_some() || src.pod_certificate.is_some() {
                return Err(failed(
                    name,
                    "clusterTrustBundle and podCertificate projections are not supported by k1s",
                ));
            }
        }
        write_files(&dir, &files).map_err(|m| failed(name, m))?;
        return Ok(dir);
    }
    Err(failed(
        name,
        "this volume type is not supported by k1s yet (emptyDir, hostPath, configMap, secret, downwardAPI, projected and persistentVolumeClaim are)",
    ))
}

/// Sets up (or refreshes) every volume of the pod; answers each one's folder by name.
pub(crate) async fn setup(
    ctx: &Ctx,
    pod: &Pod,
    pod_dir: &Path,
) -> Result<HashMap<String, PathBuf>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut sources = Sources::new(ctx.client.clone(), &ns);
    let mut out = HashMap::new();
    for v in pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default()
    {
        let path = setup_one(ctx, pod, pod_dir, &v, &mut sources).await?;
        out.insert(v.name.clone(), path);
    }
    Ok(out)
}

/// Whether the pod has volumes whose files follow API objects (refreshed periodically).
pub(crate) fn has_dynamic_volumes(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|vs| {
            vs.iter().any(|v| {
                v.config_map.is_some()
                    || v.secret.is_some()
                    || v.projected.is_some()
                    || v.downward_api.is_some()
            })
        })
}

/// The bind mounts of a container's `volumeMounts`.
pub(crate) fn mounts(
    pod: &Pod,
    c: &SpecContainer,
    paths: &HashMap<String, PathBuf>,
) -> Result<Vec<Mount>, ConfigError> {
    let read_only = read_only_volumes(pod);
    let mut out = Vec::new();
    for vm in c.volume_mounts.iter().flatten() {
        let Some(base) = paths.get(&vm.name) else {
            return Err(ConfigError(format!(
                "cannot find volume \"{}\" to mount into container \"{}\"",
                vm.name, c.name
            )));
        };
        let mut host = base.clone();
        let sub = vm
            .sub_path
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| vm.sub_path_expr.clone().filter(|s| !s.is_empty()));
        if let Some(sub) = sub {
            if sub.split('/').any(|p| p == "..") || sub.starts_with('/') {
                return Err(ConfigError(format!("invalid subpath {sub:?}")));
            }
            host = host.join(&sub);
            if !host.exists() {
                std::fs::create_dir_all(&host).map_err(|e| {
                    ConfigError(format!("failed to create subPath directory for volumeMount \"{}\" of container \"{}\": {e}", vm.name, c.name))
                })?;
            }
        }
        out.push(Mount {
            container_path: PathBuf::from(&vm.mount_path),
            host_path: host,
            read_only: vm.read_only.unwrap_or(false) || read_only.contains(&vm.name),
        });
    }
    Ok(out)
}

/// Unmounts the tmpfs volumes under the pod's folder (before it is removed).
pub(crate) async fn teardown(pod_dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = format!("{}/", pod_dir.to_string_lossy());
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| mp.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Err(e) = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(path = %p, error = %e, "cannot unmount a pod volume");
        }
    }
}
