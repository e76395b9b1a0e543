//! Manifests: PUT by digest or tag, and reading what a tag points to now (to put it back
//! when a later tag of the same push fails).

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::RegistryError;
use super::client::{MANIFEST_MAX, Registry};
use super::error::status_error;

/// Every manifest media type hoist pushes.
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A manifest as the registry serves it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Bytes,
}

impl Registry {
    /// PUTs a manifest under a tag or digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &Bytes,
    ) -> Result<(), RegistryError> {
        let op = format!("PUT manifest {repo}:{reference}");
        if bytes.len() > MANIFEST_MAX {
            return Err(RegistryError::Protocol {
                op,
                detail: format!(
                    "manifest is {} bytes, over the 4 MiB registries accept",
                    bytes.len()
                ),
            });
        }
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(&op, &url, &Self::scopes(repo, None), || {
                self.http
                    .put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(&op, resp).await);
        }
        Ok(())
    }

    /// The manifest a tag (or digest) names now, or `None`.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Manifest>, RegistryError> {
        let op = format!("GET manifest {repo}:{reference}");
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(&op, &url, &Self::scopes(repo, None), || {
                self.http.get(url.clone()).header(ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(status_error(&op, resp).await);
        }
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = read_manifest(&op, resp).await?;
        Ok(Some(Manifest { media_type, bytes }))
    }

    /// Deletes a tag; false where the registry does not delete tags (distribution 2.8).
    pub async fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool, RegistryError> {
        let op = format!("DELETE tag {repo}:{tag}");
        let url = self.url(&format!("/v2/{repo}/manifests/{tag}"));
        let scopes = [format!("repository:{repo}:pull,push,delete")];
        let resp = self
            .send(&op, &url, &scopes, || self.http.delete(url.clone()))
            .await;
        Ok(matches!(resp, Ok(r) if r.status().is_success()))
    }
}

/// A manifest body, refused past the 4 MiB registries allow.
async fn read_manifest(op: &str, mut resp: reqwest::Response) -> Result<Bytes, RegistryError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| RegistryError::Protocol {
        op: op.into(),
        detail: e.to_string(),
    })? {
        out.extend_from_slice(&chunk);
        if out.len() > MANIFEST_MAX {
            return Err(RegistryError::Protocol {
                op: op.into(),
                detail: "manifest over 4 MiB".into(),
            });
        }
    }
    Ok(Bytes::from(out))
}
