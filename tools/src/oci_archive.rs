//! OCI image archives (the image-layout tarball `ctr images import` takes),
//! built reproducibly from files in memory: sorted entries, fixed times.

use std::collections::BTreeMap;
use std::io::{self, Write};

use flate2::write::GzEncoder;
use serde_json::json;
use sha2::{Digest, Sha256};

const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[derive(Debug, thiserror::Error)]
pub enum OciArchiveError {
    #[error("cannot write the image archive: {0}")]
    Io(#[from] io::Error),
    #[error("image reference {0:?} needs a tag, e.g. \"example.com/app:1.0\"")]
    NoTag(String),
}

/// One file-system entry of a layer.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir { path: String, mode: u32 },
    File { path: String, mode: u32, data: Vec<u8> },
    Symlink { path: String, target: String },
}

impl Entry {
    pub fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => path,
        }
    }
}

/// What the image is and runs.
#[derive(Debug, Clone)]
pub struct Image {
    /// Full reference, e.g. `docker.io/library/app:latest`.
    pub reference: String,
    /// GOARCH spelling: `amd64`, `arm64`.
    pub architecture: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// Config labels, also written as the manifest's annotations.
    pub labels: BTreeMap<String, String>,
    pub entries: Vec<Entry>,
}

struct Blob {
    digest: String,
    bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        Self { digest: sha256(&bytes), bytes }
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn layer_tar(entries: &[Entry]) -> io::Result<Vec<u8>> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path().cmp(b.path()));
    let mut tar = tar::Builder::new(Vec::new());
    for entry in sorted {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match entry {
            Entry::Dir { path, mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                tar.append_data(&mut header, path, io::empty())?;
            }
            Entry::File { path, mode, data } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, path, data.as_slice())?;
            }
            Entry::Symlink { path, target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, path, target)?;
            }
        }
    }
    tar.into_inner()
}

fn to_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values always serialize")
}

/// Writes `image` as an OCI image-layout tarball to `out`.
pub fn write(image: &Image, out: impl Write) -> Result<(), OciArchiveError> {
    let tag_at = image.reference.rfind(':').filter(|&i| !image.reference[i..].contains('/'));
    let tag =
        tag_at.map(|i| &image.reference[i + 1..]).ok_or_else(|| OciArchiveError::NoTag(image.reference.clone()))?;

    let diff = layer_tar(&image.entries)?;
    let diff_id = sha256(&diff);
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&diff)?;
    let layer = Blob::new(gz.finish()?);

    let config = Blob::new(to_json(&json!({
        "architecture": image.architecture,
        "os": "linux",
        "config": { "Env": image.env, "Cmd": image.cmd, "Labels": image.labels },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    })));
    let manifest = Blob::new(to_json(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": { "mediaType": MEDIA_CONFIG, "digest": config.digest, "size": config.bytes.len() },
        "layers": [{ "mediaType": MEDIA_LAYER, "digest": layer.digest, "size": layer.bytes.len() }],
        "annotations": image.labels,
    })));
    let index = to_json(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest.digest,
            "size": manifest.bytes.len(),
            "platform": { "architecture": image.architecture, "os": "linux" },
            "annotations": {
                "io.containerd.image.name": image.reference,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    }));

    let mut archive = tar::Builder::new(out);
    let mut add = |path: &str, bytes: &[u8]| -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        archive.append_data(&mut header, path, bytes)
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add("index.json", &index)?;
    for blob in [&config, &manifest, &layer] {
        let hex = blob.digest.trim_start_matches("sha256:");
        add(&format!("blobs/sha256/{hex}"), &blob.bytes)?;
    }
    archive.into_inner()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Image {
        Image {
            reference: "docker.io/runx-test/app:1.0".into(),
            architecture: "amd64".into(),
            cmd: vec!["/bin/app".into()],
            env: vec!["PATH=/bin".into()],
            labels: [("io.runx.kernel".to_owned(), "/boot/k".to_owned())].into(),
            entries: vec![
                Entry::Symlink { path: "bin/sh".into(), target: "app".into() },
                Entry::Dir { path: "bin".into(), mode: 0o755 },
                Entry::File { path: "bin/app".into(), mode: 0o755, data: b"#!/bin/sh\n".to_vec() },
            ],
        }
    }

    fn archive_files(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                io::Read::read_to_end(&mut e, &mut data).unwrap();
                (path, data)
            })
            .collect()
    }

    #[test]
    fn index_points_at_manifest_config_and_layer_by_digest() {
        let mut bytes = Vec::new();
        write(&sample(), &mut bytes).unwrap();
        let files = archive_files(&bytes);
        let get = |name: &str| files.iter().find(|(p, _)| p == name).map(|(_, d)| d.clone()).unwrap();
        let blob = |digest: &str| get(&format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")));

        let index: serde_json::Value = serde_json::from_slice(&get("index.json")).unwrap();
        let desc = &index["manifests"][0];
        assert_eq!(desc["annotations"]["io.containerd.image.name"], "docker.io/runx-test/app:1.0");
        assert_eq!(desc["annotations"]["org.opencontainers.image.ref.name"], "1.0");
        let manifest_bytes = blob(desc["digest"].as_str().unwrap());
        assert_eq!(sha256(&manifest_bytes), desc["digest"]);
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
        assert_eq!(config["config"]["Cmd"][0], "/bin/app");
        assert_eq!(config["config"]["Labels"]["io.runx.kernel"], "/boot/k");
        assert_eq!(manifest["annotations"]["io.runx.kernel"], "/boot/k");

        let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
        let mut diff = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(layer.as_slice()), &mut diff).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256(&diff));
        let names: Vec<String> = archive_files(&diff).into_iter().map(|(p, _)| p).collect();
        assert_eq!(names, ["bin", "bin/app", "bin/sh"]);
    }

    #[test]
    fn archives_are_reproducible() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write(&sample(), &mut a).unwrap();
        write(&sample(), &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn refuses_a_reference_without_a_tag() {
        let image = Image { reference: "localhost:5000/app".into(), ..sample() };
        let err = write(&image, Vec::new()).unwrap_err();
        assert!(matches!(err, OciArchiveError::NoTag(_)), "{err}");
    }
}
