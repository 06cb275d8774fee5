//! The image store on containerd's content, images, snapshots and diff services.
//!
//! An image is an image record (name → manifest or index descriptor) whose blobs are in the
//! content store, labelled the way containerd's own clients label them so its garbage
//! collector keeps what an image still needs (`containerd.io/gc.ref.*`), and whose layers are
//! unpacked into overlayfs snapshots named by their chain ids.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_client::services::v1 as pb;
use containerd_client::types::Descriptor;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use super::{ContainerdRuntime, SNAPSHOTTER, is_not_found, new_id, rt_err, status_err};
use crate::runtime::{
    Image, ImageConfig, PullPolicy, RegistryCredential, RuntimeError, RuntimeResult,
};

const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CHUNK: usize = 1 << 20;

/// Normalizes an image reference as docker does (`busybox` → `docker.io/library/busybox:latest`).
pub fn normalize(image: &str) -> RuntimeResult<String> {
    let reference = super::reference::ImageReference::parse(image)
        .map_err(|_| RuntimeError::InvalidImageName(image.to_string()))?;
    Ok(reference.to_string())
}

/// An image record resolved down to its manifest and config.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) name: String,
    pub(crate) target: Descriptor,
    pub(crate) config_digest: String,
    pub(crate) config: Arc<Vec<u8>>,
    pub(crate) layers: Vec<Descriptor>,
    pub(crate) diff_ids: Vec<String>,
}

impl Resolved {
    pub(crate) fn config_json(&self) -> Value {
        serde_json::from_slice(&self.config).unwrap_or(Value::Null)
    }
}

/// The chain ids of a stack of layers (the snapshot names), per the OCI image spec.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => format!(
                "sha256:{}",
                hex(&Sha256::digest(format!("{parent} {diff_id}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn descriptor(v: &Value) -> Option<Descriptor> {
    Some(Descriptor {
        media_type: v
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        digest: v.get("digest")?.as_str()?.to_string(),
        size: v.get("size").and_then(Value::as_i64).unwrap_or(0),
        annotations: v
            .get("annotations")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

pub(crate) fn is_index(media_type: &str, json: &Value) -> bool {
    media_type == MEDIA_OCI_INDEX
        || media_type == MEDIA_DOCKER_LIST
        || (json.get("manifests").is_some() && json.get("layers").is_none())
}

/// Picks this node's platform (linux/amd64 or the machine's) out of an index.
pub(crate) fn pick_platform(manifests: &[Value]) -> Option<&Value> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    manifests
        .iter()
        .find(|m| {
            let p = m.get("platform");
            p.and_then(|p| p.get("os")).and_then(Value::as_str) == Some("linux")
                && p.and_then(|p| p.get("architecture"))
                    .and_then(Value::as_str)
                    == Some(arch)
        })
        .or_else(|| manifests.iter().find(|m| m.get("platform").is_none()))
}

impl ContainerdRuntime {
    /// A blob from the content store (cached: content is immutable by digest).
    pub(crate) async fn read_blob(&self, digest: &str) -> RuntimeResult<Arc<Vec<u8>>> {
        if let Some(hit) = self.inner.blobs.lock().map_err(rt_err)?.get(digest) {
            return Ok(hit.clone());
        }
        let mut stream = self
            .content()
            .read(self.req(pb::ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(|e| status_err(&format!("read {digest}"), e))?
            .into_inner();
        let mut data = Vec::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|e| status_err(&format!("read {digest}"), e))?
        {
            data.extend_from_slice(&chunk.data);
        }
        let data = Arc::new(data);
        let mut cache = self.inner.blobs.lock().map_err(rt_err)?;
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert(digest.to_string(), data.clone());
        Ok(data)
    }

    async fn read_json(&self, digest: &str) -> RuntimeResult<Value> {
        let data = self.read_blob(digest).await?;
        serde_json::from_slice(&data).map_err(|e| rt_err(format!("{digest} is not JSON: {e}")))
    }

    /// Resolves an image record's target down to one manifest and its config.
    pub(crate) async fn resolve(&self, name: &str, target: &Descriptor) -> RuntimeResult<Resolved> {
        let mut desc = target.clone();
        let mut json = self.read_json(&desc.digest).await?;
        for _ in 0..4 {
            if !is_index(&desc.media_type, &json) {
                break;
            }
            let manifests = json
                .get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let picked = pick_platform(&manifests)
                .and_then(descriptor)
                .ok_or_else(|| {
                    rt_err(format!(
                        "image {name} has no manifest for linux/{}",
                        std::env::consts::ARCH
                    ))
                })?;
            desc = picked;
            json = self.read_json(&desc.digest).await?;
        }
        let config_desc = json.get("config").and_then(descriptor).ok_or_else(|| {
            rt_err(format!(
                "image {name}: manifest {} has no config",
                desc.digest
            ))
        })?;
        let layers: Vec<Descriptor> = json
            .get("layers")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(descriptor).collect())
            .unwrap_or_default();
        let config = self.read_blob(&config_desc.digest).await?;
        let config_json: Value = serde_json::from_slice(&config)
            .map_err(|e| rt_err(format!("image {name} config: {e}")))?;
        let diff_ids = config_json
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .map(|d| {
                d.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Resolved {
            name: name.to_string(),
            target: target.clone(),
            config_digest: config_desc.digest,
            config,
            layers,
            diff_ids,
        })
    }

    pub(crate) async fn image_records(&self) -> RuntimeResult<Vec<pb::Image>> {
        Ok(self
            .images_client()
            .list(self.req(pb::ListImagesRequest { filters: vec![] }))
            .await
            .map_err(|e| status_err("list images", e))?
            .into_inner()
            .images)
    }

    /// Finds an image by name (normalized), by id (`sha256:` of its config) or by a unique id
    /// prefix.
    pub(crate) async fn find_image(&self, image: &str) -> RuntimeResult<Option<Resolved>> {
        if !image.starts_with("sha256:") {
            let name = normalize(image)?;
            return match self
                .images_client()
                .get(self.req(pb::GetImageRequest { name: name.clone() }))
                .await
            {
                Ok(r) => match r.into_inner().image.and_then(|i| i.target) {
                    Some(target) => Ok(Some(self.resolve(&name, &target).await?)),
                    None => Ok(None),
                },
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(status_err(&format!("image {name}"), e)),
            };
        }
        for record in self.image_records().await? {
            let Some(target) = record.target else {
                continue;
            };
            match self.resolve(&record.name, &target).await {
                Ok(r) if r.config_digest.starts_with(image) => return Ok(Some(r)),
                Ok(_) => {}
                Err(e) => tracing::debug!(image = %record.name, "skipping unreadable image: {e}"),
            }
        }
        Ok(None)
    }

    /// Unpacks an image's layers into snapshots (skipping those present); answers the top
    /// chain id.
    pub(crate) async fn unpack(&self, resolved: &Resolved) -> RuntimeResult<String> {
        let chain = chain_ids(&resolved.diff_ids);
        if chain.len() != resolved.layers.len() || chain.is_empty() {
            return Err(rt_err(format!(
                "image {}: {} layers but {} diff ids",
                resolved.name,
                resolved.layers.len(),
                chain.len()
            )));
        }
        let lease = self.lease().await?;
        let result = self.unpack_leased(resolved, &chain, &lease).await;
        self.end_lease(&lease).await;
        result
    }

    async fn unpack_leased(
        &self,
        resolved: &Resolved,
        chain: &[String],
        lease: &str,
    ) -> RuntimeResult<String> {
        for (i, (layer, chain_id)) in resolved.layers.iter().zip(chain).enumerate() {
            let exists = self
                .snapshots()
                .stat(self.req(pb::snapshots::StatSnapshotRequest {
                    snapshotter: SNAPSHOTTER.into(),
                    key: chain_id.clone(),
                }))
                .await;
            match exists {
                Ok(_) => continue,
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(status_err("stat snapshot", e)),
            }
            let key = format!("extract-{} {chain_id}", new_id());
            let parent = if i == 0 {
                String::new()
            } else {
                chain[i - 1].clone()
            };
            let mounts = self
                .snapshots()
                .prepare(self.leased(
                    pb::snapshots::PrepareSnapshotRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        key: key.clone(),
                        parent,
                        labels: HashMap::from([(
                            "containerd.io/snapshot.ref".to_string(),
                            chain_id.clone(),
                        )]),
                    },
                    lease,
                ))
                .await
                .map_err(|e| status_err("prepare snapshot", e))?
                .into_inner()
                .mounts;
            let applied = self
                .diff()
                .apply(self.leased(
                    pb::ApplyRequest {
                        diff: Some(layer.clone()),
                        mounts,
                        payloads: HashMap::new(),
                        sync_fs: false,
                    },
                    lease,
                ))
                .await;
            let applied = match applied {
                Ok(r) => r.into_inner().applied,
                Err(e) => {
                    let _ = self
                        .snapshots()
                        .remove(self.req(pb::snapshots::RemoveSnapshotRequest {
                            snapshotter: SNAPSHOTTER.into(),
                            key,
                        }))
                        .await;
                    return Err(status_err(&format!("apply layer {}", layer.digest), e));
                }
            };
            if let Some(applied) = applied
                && applied.digest != resolved.diff_ids[i]
            {
                let _ = self
                    .snapshots()
                    .remove(self.req(pb::snapshots::RemoveSnapshotRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        key,
                    }))
                    .await;
                return Err(rt_err(format!(
                    "layer {} unpacked to {} but the image's config says {}",
                    layer.digest, applied.digest, resolved.diff_ids[i]
                )));
            }
            match self
                .snapshots()
                .commit(self.leased(
                    pb::snapshots::CommitSnapshotRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        name: chain_id.clone(),
                        key: key.clone(),
                        labels: HashMap::new(),
                    },
                    lease,
                ))
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == tonic::Code::AlreadyExists => {
                    let _ = self
                        .snapshots()
                        .remove(self.req(pb::snapshots::RemoveSnapshotRequest {
                            snapshotter: SNAPSHOTTER.into(),
                            key,
                        }))
                        .await;
                }
                Err(e) => return Err(status_err("commit snapshot", e)),
            }
        }
        let top = chain.last().cloned().unwrap_or_default();
        // The config keeps the unpacked snapshot from the garbage collector.
        self.add_content_labels(
            &resolved.config_digest,
            &[(
                format!("containerd.io/gc.ref.snapshot.{SNAPSHOTTER}"),
                top.clone(),
            )],
        )
        .await?;
        Ok(top)
    }

    async fn add_content_labels(
        &self,
        digest: &str,
        labels: &[(String, String)],
    ) -> RuntimeResult<()> {
        let mut info = self
            .content()
            .info(self.req(pb::InfoRequest {
                digest: digest.to_string(),
            }))
            .await
            .map_err(|e| status_err("content info", e))?
            .into_inner()
            .info
            .ok_or_else(|| rt_err("content info: empty answer"))?;
        if labels.iter().all(|(k, v)| info.labels.get(k) == Some(v)) {
            return Ok(());
        }
        for (k, v) in labels {
            info.labels.insert(k.clone(), v.clone());
        }
        let paths = labels.iter().map(|(k, _)| format!("labels.{k}")).collect();
        self.content()
            .update(self.req(pb::UpdateRequest {
                info: Some(info),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(|e| status_err("content update", e))?;
        Ok(())
    }

    /// A lease that keeps what it covers for an hour (or until ended).
    pub(crate) async fn lease(&self) -> RuntimeResult<String> {
        let id = format!("k1s-{}", new_id());
        let expire = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(1))
            .map(|t| t.to_string())
            .unwrap_or_default();
        self.leases()
            .create(self.req(pb::CreateRequest {
                id: id.clone(),
                labels: HashMap::from([("containerd.io/gc.expire".to_string(), expire)]),
            }))
            .await
            .map_err(|e| status_err("create lease", e))?;
        Ok(id)
    }

    /// Creates the image record `name` → `target` under `lease`, or points an existing
    /// one at `target` (an import or pull of a newer image of the same name).
    pub(crate) async fn put_image(
        &self,
        lease: &str,
        name: &str,
        target: &Descriptor,
    ) -> RuntimeResult<()> {
        let record = pb::Image {
            name: name.to_string(),
            labels: HashMap::new(),
            target: Some(target.clone()),
            created_at: None,
            updated_at: None,
        };
        let created = self
            .images_client()
            .create(self.leased(
                pb::CreateImageRequest {
                    image: Some(record.clone()),
                    source_date_epoch: None,
                },
                lease,
            ))
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == tonic::Code::AlreadyExists => self
                .images_client()
                .update(self.leased(
                    pb::UpdateImageRequest {
                        image: Some(record),
                        update_mask: None,
                        source_date_epoch: None,
                    },
                    lease,
                ))
                .await
                .map(|_| ())
                .map_err(|e| status_err(&format!("update image {name}"), e)),
            Err(e) => Err(status_err(&format!("create image {name}"), e)),
        }
    }

    pub(crate) async fn end_lease(&self, lease: &str) {
        if let Err(e) = self
            .leases()
            .delete(self.req(pb::DeleteRequest {
                id: lease.to_string(),
                sync: false,
            }))
            .await
        {
            tracing::debug!("cannot end lease {lease}: {e}");
        }
    }

    /// Writes a file into the content store as `digest` (skipped when present), with labels.
    pub(crate) async fn write_blob(
        &self,
        lease: &str,
        digest: &str,
        path: &Path,
        labels: HashMap<String, String>,
    ) -> RuntimeResult<()> {
        match self
            .content()
            .info(self.req(pb::InfoRequest {
                digest: digest.to_string(),
            }))
            .await
        {
            Ok(_) => {
                if !labels.is_empty() {
                    let labels: Vec<(String, String)> = labels.into_iter().collect();
                    self.add_content_labels(digest, &labels).await?;
                }
                return Ok(());
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(status_err("content info", e)),
        }
        let total = i64::try_from(
            std::fs::metadata(path)
                .map_err(|e| rt_err(format!("{}: {e}", path.display())))?
                .len(),
        )
        .unwrap_or(i64::MAX);
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::WriteContentRequest>(4);
        let reference = format!("k1s-import-{}", new_id());
        let path = path.to_path_buf();
        let expected = digest.to_string();
        let feeder = tokio::spawn(async move {
            let mut file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| rt_err(format!("{}: {e}", path.display())))?;
            let mut offset = 0i64;
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(|e| rt_err(format!("{}: {e}", path.display())))?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                let request = pb::WriteContentRequest {
                    action: pb::WriteAction::Write as i32,
                    r#ref: reference.clone(),
                    total,
                    expected: expected.clone(),
                    offset,
                    data: buf,
                    labels: HashMap::new(),
                };
                offset += i64::try_from(n).unwrap_or(0);
                if tx.send(request).await.is_err() {
                    return Ok(());
                }
            }
            let _ = tx
                .send(pb::WriteContentRequest {
                    action: pb::WriteAction::Commit as i32,
                    r#ref: reference,
                    total,
                    expected,
                    offset,
                    data: Vec::new(),
                    labels,
                })
                .await;
            Ok::<(), RuntimeError>(())
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let result = self.content().write(self.leased(stream, lease)).await;
        let outcome = match result {
            Ok(response) => {
                let mut responses = response.into_inner();
                loop {
                    match responses.message().await {
                        Ok(Some(_)) => {}
                        Ok(None) => break Ok(()),
                        Err(e) if e.code() == tonic::Code::AlreadyExists => break Ok(()),
                        Err(e) => break Err(status_err(&format!("write {digest}"), e)),
                    }
                }
            }
            Err(e) if e.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(e) => Err(status_err(&format!("write {digest}"), e)),
        };
        feeder.await.map_err(rt_err)??;
        outcome
    }
}

fn resolved_to_image(resolved: &Resolved, names: Vec<String>) -> Image {
    let config = resolved.config_json();
    let c = config.get("config").cloned().unwrap_or(Value::Null);
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let repo_digests = names
        .iter()
        .map(|n| {
            let repo = n
                .rsplit_once(':')
                .filter(|(_, tag)| !tag.contains('/'))
                .map(|(r, _)| r)
                .unwrap_or(n);
            format!("{repo}@{}", resolved.target.digest)
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Image {
        id: resolved.config_digest.clone(),
        repo_tags: names,
        repo_digests,
        size: resolved
            .layers
            .iter()
            .map(|l| u64::try_from(l.size).unwrap_or(0))
            .sum(),
        config: ImageConfig {
            entrypoint: strings(c.get("Entrypoint")),
            cmd: strings(c.get("Cmd")),
            env: strings(c.get("Env")),
            working_dir: c
                .get("WorkingDir")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            user: c
                .get("User")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        },
    }
}

/// Every image, one entry per config digest with all its names.
pub(crate) async fn list_images(rt: &ContainerdRuntime) -> RuntimeResult<Vec<Image>> {
    let mut by_id: BTreeMap<String, (Resolved, Vec<String>)> = BTreeMap::new();
    for record in rt.image_records().await? {
        let Some(target) = record.target else {
            continue;
        };
        match rt.resolve(&record.name, &target).await {
            Ok(resolved) => {
                let entry = by_id
                    .entry(resolved.config_digest.clone())
                    .or_insert_with(|| (resolved.clone(), Vec::new()));
                if !record.name.contains('@') {
                    entry.1.push(record.name.clone());
                }
            }
            Err(e) => tracing::debug!(image = %record.name, "skipping unreadable image: {e}"),
        }
    }
    Ok(by_id
        .into_values()
        .map(|(r, mut names)| {
            names.sort();
            resolved_to_image(&r, names)
        })
        .collect())
}

/// The image as stored under this name or id, unpacked.
pub(crate) async fn local_image(
    rt: &ContainerdRuntime,
    image: &str,
) -> RuntimeResult<Option<Image>> {
    let Some(resolved) = rt.find_image(image).await? else {
        return Ok(None);
    };
    rt.unpack(&resolved).await?;
    let names: Vec<String> = rt
        .image_records()
        .await?
        .into_iter()
        .filter(|r| !r.name.contains('@'))
        .filter(|r| {
            r.target
                .as_ref()
                .is_some_and(|t| t.digest == resolved.target.digest)
        })
        .map(|r| r.name)
        .collect();
    Ok(Some(resolved_to_image(&resolved, names)))
}

pub(crate) async fn ensure_image(
    rt: &ContainerdRuntime,
    image: &str,
    policy: PullPolicy,
    credentials: &[RegistryCredential],
) -> RuntimeResult<Image> {
    let name = normalize(image)?;
    let present = local_image(rt, &name).await?;
    match (policy, present) {
        (PullPolicy::Never, Some(found)) | (PullPolicy::IfNotPresent, Some(found)) => Ok(found),
        (PullPolicy::Never, None) => Err(RuntimeError::ImageNeverPull(image.to_string())),
        (PullPolicy::Always, _) | (PullPolicy::IfNotPresent, None) => {
            // As upstream: Always pulls even when the image is here, and a failed pull fails.
            super::pull::pull(rt, image, &name, credentials).await?;
            local_image(rt, &name)
                .await?
                .ok_or_else(|| RuntimeError::Pull {
                    image: image.to_string(),
                    message: "the pulled image is not in the store".into(),
                })
        }
    }
}

/// Removes every name of an image id, or one name; absent images are fine (as CRI).
pub(crate) async fn remove_image(rt: &ContainerdRuntime, image: &str) -> RuntimeResult<()> {
    let names: Vec<String> = if image.starts_with("sha256:") {
        let mut names = Vec::new();
        for record in rt.image_records().await? {
            let Some(target) = record.target.clone() else {
                continue;
            };
            if let Ok(r) = rt.resolve(&record.name, &target).await
                && r.config_digest.starts_with(image)
            {
                names.push(record.name);
            }
        }
        names
    } else {
        vec![normalize(image)?]
    };
    let count = names.len();
    for (i, name) in names.into_iter().enumerate() {
        match rt
            .images_client()
            .delete(rt.req(pb::DeleteImageRequest {
                name: name.clone(),
                sync: i + 1 == count,
                target: None,
            }))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(status_err(&format!("remove image {name}"), e)),
        }
    }
    Ok(())
}

/// What an import reports as it goes.
#[derive(Debug, Clone)]
pub enum ImportProgress {
    /// The archive is being unpacked to a scratch dir.
    Reading(PathBuf),
    /// A blob is being written to the content store.
    Blob {
        /// Its digest.
        digest: String,
        /// Its size in bytes.
        size: u64,
        /// Its position among the archive's blobs (1-based) and their count.
        index: usize,
        /// How many blobs the archive has.
        count: usize,
    },
    /// An image's layers are being unpacked into snapshots.
    Unpacking(String),
    /// An image was stored under this name.
    Imported {
        /// The name.
        name: String,
        /// Its image id.
        id: String,
    },
}

/// Imports an OCI-layout or docker-archive tarball (optionally gzip-compressed); answers the
/// names stored.
pub async fn import_archive(
    rt: &ContainerdRuntime,
    archive: &Path,
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> RuntimeResult<Vec<String>> {
    let scratch = rt
        .inner
        .state_dir
        .join(format!("import-{}", &new_id()[..16]));
    progress(ImportProgress::Reading(archive.to_path_buf()));
    let src = archive.to_path_buf();
    let dst = scratch.clone();
    let unpacked = tokio::task::spawn_blocking(move || extract(&src, &dst))
        .await
        .map_err(rt_err)?;
    let result = match unpacked {
        Ok(()) => import_layout(rt, &scratch, archive, progress).await,
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    result
}

fn extract(archive: &Path, dst: &Path) -> RuntimeResult<()> {
    let err = |e: std::io::Error| rt_err(format!("{}: {e}", archive.display()));
    std::fs::create_dir_all(dst).map_err(err)?;
    let mut file = std::fs::File::open(archive).map_err(err)?;
    let mut magic = [0u8; 2];
    let gz = std::io::Read::read_exact(&mut file, &mut magic).is_ok() && magic == [0x1f, 0x8b];
    let file = std::fs::File::open(archive).map_err(err)?;
    let reader: Box<dyn std::io::Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(false);
    tar.set_unpack_xattrs(false);
    tar.unpack(dst).map_err(|e| {
        rt_err(format!(
            "{}: not a readable image archive: {e}",
            archive.display()
        ))
    })
}

fn sha256_file(path: &Path) -> RuntimeResult<String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| rt_err(format!("{}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(|e| rt_err(format!("{}: {e}", path.display())))?;
    Ok(format!("sha256:{}", hex(&hasher.finalize())))
}

fn read_json_file(path: &Path) -> RuntimeResult<Value> {
    let data = std::fs::read(path).map_err(|e| rt_err(format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&data).map_err(|e| rt_err(format!("{}: {e}", path.display())))
}

/// One image to record: a name and the descriptor its record points at.
struct Named {
    name: String,
    target: Descriptor,
}

async fn import_layout(
    rt: &ContainerdRuntime,
    dir: &Path,
    archive: &Path,
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> RuntimeResult<Vec<String>> {
    let docker_manifest = dir.join("manifest.json");
    let (blobs, named) = if dir.join("index.json").exists() && !docker_manifest.exists() {
        oci_plan(dir)?
    } else if docker_manifest.exists() {
        docker_plan(dir)?
    } else {
        return Err(rt_err(format!(
            "{}: neither an OCI layout (index.json) nor a docker archive (manifest.json)",
            archive.display()
        )));
    };
    if named.is_empty() {
        return Err(rt_err(format!(
            "{}: no image in it has a name (io.containerd.image.name or a full org.opencontainers.image.ref.name)",
            archive.display()
        )));
    }
    let lease = rt.lease().await?;
    let result = async {
        let count = blobs.len();
        for (index, (digest, path, labels)) in blobs.into_iter().enumerate() {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            progress(ImportProgress::Blob {
                digest: digest.clone(),
                size,
                index: index + 1,
                count,
            });
            rt.write_blob(&lease, &digest, &path, labels).await?;
        }
        let mut names = Vec::new();
        for image in named {
            rt.put_image(&lease, &image.name, &image.target).await?;
            progress(ImportProgress::Unpacking(image.name.clone()));
            let resolved = rt.resolve(&image.name, &image.target).await?;
            rt.unpack(&resolved).await?;
            progress(ImportProgress::Imported {
                name: image.name.clone(),
                id: resolved.config_digest.clone(),
            });
            names.push(image.name);
        }
        Ok(names)
    }
    .await;
    rt.end_lease(&lease).await;
    result
}

type Plan = (Vec<(String, PathBuf, HashMap<String, String>)>, Vec<Named>);

/// GC labels for a manifest or index blob: its children.
pub(crate) fn gc_labels(json: &Value) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    if let Some(d) = json.pointer("/config/digest").and_then(Value::as_str) {
        labels.insert(
            "containerd.io/gc.ref.content.config".to_string(),
            d.to_string(),
        );
    }
    for (i, l) in json
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(d) = l.get("digest").and_then(Value::as_str) {
            labels.insert(format!("containerd.io/gc.ref.content.l.{i}"), d.to_string());
        }
    }
    for (i, m) in json
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(d) = m.get("digest").and_then(Value::as_str) {
            labels.insert(format!("containerd.io/gc.ref.content.m.{i}"), d.to_string());
        }
    }
    labels
}

/// Every blob of an OCI layout (children before parents, so parents carry their GC labels)
/// and the named images of its index.json.
fn oci_plan(dir: &Path) -> RuntimeResult<Plan> {
    let index = read_json_file(&dir.join("index.json"))?;
    let mut named = Vec::new();
    for m in index
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(desc) = descriptor(m) else { continue };
        let name = desc
            .annotations
            .get("io.containerd.image.name")
            .cloned()
            .or_else(|| {
                desc.annotations
                    .get("org.opencontainers.image.ref.name")
                    .filter(|n| n.contains('/') || n.contains('.'))
                    .cloned()
            });
        match name.map(|n| normalize(&n)) {
            Some(Ok(name)) => named.push(Named {
                name,
                target: Descriptor {
                    annotations: HashMap::new(),
                    ..desc
                },
            }),
            Some(Err(e)) => tracing::warn!("skipping an image with a bad name: {e}"),
            None => {
                tracing::warn!(digest = %desc.digest, "skipping an image without a name in index.json")
            }
        }
    }
    let mut blobs = Vec::new();
    let mut parents = Vec::new();
    let blob_dir = dir.join("blobs");
    for alg in
        std::fs::read_dir(&blob_dir).map_err(|e| rt_err(format!("{}: {e}", blob_dir.display())))?
    {
        let alg = alg.map_err(rt_err)?;
        for entry in std::fs::read_dir(alg.path()).map_err(rt_err)? {
            let entry = entry.map_err(rt_err)?;
            let digest = format!(
                "{}:{}",
                alg.file_name().to_string_lossy(),
                entry.file_name().to_string_lossy()
            );
            let path = entry.path();
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            let labels = if size < 4 << 20 {
                std::fs::read(&path)
                    .ok()
                    .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
                    .filter(Value::is_object)
                    .map(|j| gc_labels(&j))
            } else {
                None
            };
            match labels {
                Some(labels) if !labels.is_empty() => parents.push((digest, path, labels)),
                _ => blobs.push((digest, path, HashMap::new())),
            }
        }
    }
    // An index names manifests: write manifests (labels naming configs and layers) before
    // indexes (labels naming manifests).
    parents.sort_by_key(|(_, _, labels)| {
        labels
            .keys()
            .any(|k| k.starts_with("containerd.io/gc.ref.content.m."))
    });
    blobs.extend(parents);
    Ok((blobs, named))
}

/// A docker archive (`docker save`): manifest.json names a config and layer files; k1s
/// writes an OCI manifest for each image.
fn docker_plan(dir: &Path) -> RuntimeResult<Plan> {
    let manifest = read_json_file(&dir.join("manifest.json"))?;
    let mut blobs: Vec<(String, PathBuf, HashMap<String, String>)> = Vec::new();
    let mut named = Vec::new();
    for (n, entry) in manifest.as_array().into_iter().flatten().enumerate() {
        let config_file = entry
            .get("Config")
            .and_then(Value::as_str)
            .ok_or_else(|| rt_err("manifest.json: an entry without Config"))?;
        let config_path = dir.join(config_file);
        let config_digest = sha256_file(&config_path)?;
        let config_size = std::fs::metadata(&config_path)
            .map(|m| m.len())
            .unwrap_or(0);
        let mut layers = Vec::new();
        for layer in entry
            .get("Layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(file) = layer.as_str() else { continue };
            let path = dir.join(file);
            let digest = sha256_file(&path)?;
            let mut magic = [0u8; 2];
            let gz = std::fs::File::open(&path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                .is_ok()
                && magic == [0x1f, 0x8b];
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            layers.push(serde_json::json!({
                "mediaType": if gz { MEDIA_OCI_LAYER_GZIP } else { MEDIA_OCI_LAYER },
                "digest": digest,
                "size": size,
            }));
            blobs.push((digest, path, HashMap::new()));
        }
        blobs.push((config_digest.clone(), config_path, HashMap::new()));
        let oci = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&oci).map_err(rt_err)?;
        let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        let path = dir.join(format!("k1s-manifest-{n}.json"));
        std::fs::write(&path, &bytes).map_err(rt_err)?;
        blobs.push((digest.clone(), path, gc_labels(&oci)));
        let target = Descriptor {
            media_type: MEDIA_OCI_MANIFEST.to_string(),
            digest,
            size: i64::try_from(bytes.len()).unwrap_or(0),
            annotations: HashMap::new(),
        };
        for tag in entry
            .get("RepoTags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match tag.as_str().map(normalize) {
                Some(Ok(name)) => named.push(Named {
                    name,
                    target: target.clone(),
                }),
                Some(Err(e)) => tracing::warn!("skipping a bad RepoTag: {e}"),
                None => {}
            }
        }
    }
    Ok((blobs, named))
}

/// Imports every `*.tar`, `*.tar.gz` and `*.tgz` in `dir` (k3s's airgap images dir,
/// `<data-dir>/agent/images/`), logging what fails; answers the names imported.
pub async fn import_dir(rt: &ContainerdRuntime, dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.ends_with(".tar") || n.ends_with(".tar.gz") || n.ends_with(".tgz")
        })
        .collect();
    files.sort();
    let mut names = Vec::new();
    for file in files {
        let started = std::time::Instant::now();
        match import_archive(rt, &file, &|_| {}).await {
            Ok(imported) => {
                tracing::info!(archive = %file.display(), images = ?imported, elapsed = ?started.elapsed(), "imported images");
                names.extend(imported);
            }
            Err(e) => tracing::warn!(archive = %file.display(), "cannot import images: {e}"),
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_as_docker_does() {
        assert_eq!(
            normalize("busybox").ok().as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        assert_eq!(
            normalize("nginx:1.25").ok().as_deref(),
            Some("docker.io/library/nginx:1.25")
        );
        assert_eq!(
            normalize("quay.io/a/b").ok().as_deref(),
            Some("quay.io/a/b:latest")
        );
        assert_eq!(
            normalize("localhost:5000/x:y").ok().as_deref(),
            Some("localhost:5000/x:y")
        );
        assert!(matches!(
            normalize("Bad Name"),
            Err(RuntimeError::InvalidImageName(_))
        ));
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let ids = chain_ids(&["sha256:a".to_string(), "sha256:b".to_string()]);
        assert_eq!(ids[0], "sha256:a");
        assert_eq!(
            ids[1],
            format!("sha256:{}", hex(&Sha256::digest(b"sha256:a sha256:b")))
        );
    }
}
