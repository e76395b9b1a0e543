//! The documents of an image: docker `manifest.json`, OCI `index.json`, manifests, indexes
//! and image configs. Callers keep the raw bytes beside the parsed form, so a manifest can be
//! pushed byte-exact and its digest kept.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::Digest;
use super::media::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

macro_rules! objects_only {
    ($($t:ty),*) => {$(
        impl FromObject for $t {
            fn from_object<'de, D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::deserialize(d) // the derived reader (`remote = "Self"`)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map(ObjectOnly(std::marker::PhantomData))
            }
        }
    )*};
}

trait FromObject: Sized {
    fn from_object<'de, D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// Reads a struct from a JSON object only, through its derived reader.
struct ObjectOnly<T>(std::marker::PhantomData<T>);

impl<'de, T: FromObject> Visitor<'de> for ObjectOnly<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_object(de::value::MapAccessDeserializer::new(map))
    }
}

/// One image in a docker `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(remote = "Self")]
pub struct DockerImage {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// An OCI/docker content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(remote = "Self")]
pub struct Descriptor {
    pub media_type: Option<String>,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(remote = "Self")]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    pub fn render(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// A manifest or index, as far as hoist needs to read it.
#[derive(Debug, Clone)]
pub enum Document {
    Index {
        media_type: String,
        manifests: Vec<Descriptor>,
    },
    Manifest {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(remote = "Self")]
struct RawDocument {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
}

impl Document {
    /// Parses a manifest or index. `hint` is the media type of the descriptor that named it;
    /// a document that is ambiguous (CVE-2021-41190), has no usable type, or disagrees with
    /// the descriptor is refused.
    pub fn parse(bytes: &[u8], hint: Option<&str>) -> Result<Document, String> {
        let raw: RawDocument = strict_json(bytes)?;
        if raw.schema_version != Some(2) {
            return Err("schemaVersion must be 2".into());
        }
        if raw.manifests.is_some() && (raw.config.is_some() || raw.layers.is_some()) {
            return Err("document has both manifests and config/layers (ambiguous)".into());
        }
        let media_type = match (&raw.media_type, hint) {
            (Some(m), Some(h)) if m != h => {
                return Err(format!("mediaType {m} disagrees with the descriptor's {h}"));
            }
            (Some(m), _) => m.clone(),
            (None, Some(h)) => h.to_string(),
            (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
            (None, None) => OCI_MANIFEST.to_string(),
        };
        match media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => {
                let manifests: Vec<Descriptor> = match raw.manifests {
                    Some(v @ serde_json::Value::Array(_)) => {
                        serde_json::from_value(v).map_err(|e| format!("manifests: {e}"))?
                    }
                    _ => return Err("an index needs a manifests array".into()),
                };
                if let Some(d) = manifests.iter().find(|d| d.media_type.is_none()) {
                    return Err(format!("descriptor {} has no mediaType", d.digest));
                }
                Ok(Document::Index {
                    media_type,
                    manifests,
                })
            }
            OCI_MANIFEST | DOCKER_MANIFEST => {
                let config = raw.config.ok_or("a manifest needs a config")?;
                let layers = raw.layers.ok_or("a manifest needs layers")?;
                if let Some(d) = std::iter::once(&config)
                    .chain(&layers)
                    .find(|d| d.media_type.is_none())
                {
                    return Err(format!("descriptor {} has no mediaType", d.digest));
                }
                Ok(Document::Manifest {
                    media_type,
                    config,
                    layers,
                })
            }
            other => Err(format!("unsupported manifest media type {other}")),
        }
    }
}

/// The part of an image config hoist checks: the layers' uncompressed digests.
#[derive(Debug, Deserialize)]
#[serde(remote = "Self")]
pub struct ImageConfig {
    pub rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
#[serde(remote = "Self")]
pub struct RootFs {
    pub diff_ids: Vec<Digest>,
}

// Go's encoding/json fills a struct only from a JSON object; serde's derive also takes an
// array of the fields in order (`["application/...", "sha256:...", 12]` as a descriptor).
// Two readers must agree on what a manifest says, so these types take objects only: the
// derive (`remote = "Self"`) is reached through `deserialize_map`, which refuses an array.
objects_only!(
    DockerImage,
    Descriptor,
    Platform,
    RawDocument,
    ImageConfig,
    RootFs
);

/// Parses JSON refusing duplicate object keys anywhere: Go keeps the last, serde the first or
/// an error, and two readers must never disagree on what a manifest says.
pub fn strict_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    NoDuplicates
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicates)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !keys.insert(k.clone()) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
            map.next_value_seed(NoDuplicates)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused() {
        assert!(strict_json::<serde_json::Value>(br#"{"a":1,"b":{"c":1,"c":2}}"#).is_err());
        assert!(strict_json::<serde_json::Value>(br#"{"a":[{"x":1},{"x":2}]}"#).is_ok());
    }

    #[test]
    fn ambiguous_documents_are_refused() {
        let d = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"layers":[]}"#;
        assert!(Document::parse(d, None).unwrap_err().contains("ambiguous"));
        let d = br#"{"schemaVersion":2,"manifests":null}"#;
        assert!(Document::parse(d, None).is_err());
        let d = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
        assert!(matches!(
            Document::parse(d, None),
            Ok(Document::Manifest { .. })
        ));
        assert!(Document::parse(d, Some(DOCKER_MANIFEST)).is_err());
    }

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn structs_written_as_arrays_are_refused() {
        // Each document reads as an object and is refused with one part written as an array,
        // as Go's encoding/json refuses it (serde's derive alone would take the array).
        let desc = format!(r#"{{"mediaType":"x","digest":"{EMPTY}","size":0}}"#);
        let as_array = format!(r#"["x","{EMPTY}",0]"#);
        let manifest = |config: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":[]}}"#
            )
        };
        assert!(Document::parse(manifest(&desc).as_bytes(), None).is_ok());
        let err = Document::parse(manifest(&as_array).as_bytes(), None).unwrap_err();
        assert!(err.contains("expected a JSON object"), "{err}");
        let whole = format!(r#"[2,"{OCI_MANIFEST}",null,{desc},[]]"#);
        assert!(Document::parse(whole.as_bytes(), None).is_err());
        let index = |m: &str| format!(r#"{{"schemaVersion":2,"manifests":[{m}]}}"#);
        assert!(Document::parse(index(&desc).as_bytes(), None).is_ok());
        assert!(Document::parse(index(&as_array).as_bytes(), None).is_err());

        let docker = r#"[{"Config":"c.json","RepoTags":null,"Layers":[]}]"#;
        assert!(strict_json::<Vec<DockerImage>>(docker.as_bytes()).is_ok());
        assert!(strict_json::<Vec<DockerImage>>(br#"[["c.json",null,[]]]"#).is_err());
        let config = format!(r#"{{"rootfs":{{"diff_ids":["{EMPTY}"]}}}}"#);
        assert!(strict_json::<ImageConfig>(config.as_bytes()).is_ok());
        let config = format!(r#"{{"rootfs":[["{EMPTY}"]]}}"#);
        assert!(strict_json::<ImageConfig>(config.as_bytes()).is_err());
        let platform = r#"{"architecture":"amd64","os":"linux"}"#;
        assert!(serde_json::from_str::<Platform>(platform).is_ok());
        assert!(serde_json::from_str::<Platform>(r#"["amd64","linux"]"#).is_err());
    }
}
