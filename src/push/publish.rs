//! Publishing verified images: names → targets, blobs into each target repository (mounted
//! from the staging repository or uploaded from memory), manifests by digest children first,
//! and tags last, once every image of the archive is complete.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::blob::Placed;
use super::cache::Locations;
use super::images::{Node, Plan, Source};
use super::ingest::FileRec;
use super::{PushError, Target};
use crate::digest::Digest;
use crate::reference;
use crate::registry::Registry;
use crate::report::{BlobReport, ChildReport, ImageReport, Outcome};

/// Where one plan goes: repository → tags.
pub type Targets = BTreeMap<String, Vec<String>>;

/// Decides every plan's repositories and tags, before anything is published.
pub fn targets(
    plans: &[Plan],
    target: &Target,
    extra_tags: &[String],
) -> Result<Vec<Targets>, PushError> {
    if let Target::Named { tag: Some(_), .. } = target
        && plans.len() > 1
    {
        return Err(PushError::ReferenceAmbiguous { count: plans.len() });
    }
    let mut out = Vec::new();
    for plan in plans {
        let mut names = Vec::new();
        for n in &plan.names {
            names.push(
                reference::parse_image_name(n).map_err(|_| invalid("archive image name", n))?,
            );
        }
        for n in &plan.ref_names {
            names.push(reference::parse_ref_name(n).map_err(|_| invalid("archive ref name", n))?);
        }
        let mut t: Targets = BTreeMap::new();
        match target {
            Target::Named { repository, tag } => {
                let tags = t.entry(repository.clone()).or_default();
                match tag {
                    Some(tag) => tags.push(tag.clone()),
                    None => tags.extend(names.iter().filter_map(|n| n.tag.clone())),
                }
            }
            Target::FromArchive => {
                // A bare ref name (a tag) applies to the repositories the other names give.
                let repos: Vec<String> =
                    names.iter().filter_map(|n| n.repository.clone()).collect();
                for n in &names {
                    match (&n.repository, &n.tag) {
                        (Some(r), Some(tag)) => t.entry(r.clone()).or_default().push(tag.clone()),
                        (Some(r), None) => {
                            t.entry(r.clone()).or_default();
                        }
                        (None, Some(tag)) => {
                            for r in &repos {
                                t.entry(r.clone()).or_default().push(tag.clone());
                            }
                        }
                        (None, None) => {}
                    }
                }
            }
        }
        for tags in t.values_mut() {
            tags.extend(extra_tags.iter().cloned());
            tags.sort();
            tags.dedup();
        }
        t.retain(|_, tags| !tags.is_empty());
        if t.is_empty() {
            return Err(PushError::ReferenceMissing {
                image: plan.label.clone(),
            });
        }
        out.push(t);
    }
    Ok(out)
}

fn invalid(what: &'static str, name: &str) -> PushError {
    PushError::ReferenceInvalid {
        what,
        name: name.chars().take(300).collect(),
    }
}

/// Publishes plans; tags are written only after every image's manifests are in.
pub async fn publish(
    registry: &Arc<Registry>,
    plans: &[Plan],
    targets: &[Targets],
    upload_repo: &str,
    locations: &Locations,
) -> Result<(Vec<ImageReport>, u64), PushError> {
    let mut sent = 0u64;
    let mut outcomes: HashMap<(String, Digest), Outcome> = HashMap::new();
    let mut reports = Vec::new();
    for (plan, t) in plans.iter().zip(targets) {
        for (repo, tags) in t {
            let mut blobs = Vec::new();
            let known = Known {
                upload_repo,
                locations,
            };
            ensure_node(
                registry,
                &plan.root,
                repo,
                &known,
                &mut outcomes,
                &mut blobs,
                &mut sent,
            )
            .await?;
            for b in &blobs {
                locations.put(b.digest.clone(), repo);
            }
            put_manifests(registry, &plan.root, repo, &mut sent).await?;
            reports.push(ImageReport {
                repository: repo.clone(),
                tags: tags.clone(),
                digest: plan.root.digest.clone(),
                media_type: plan.root.media_type.clone(),
                manifest_rewritten: plan.root.rewritten,
                manifests: plan
                    .root
                    .children
                    .iter()
                    .map(|c| ChildReport {
                        digest: c.digest.clone(),
                        media_type: c.media_type.clone(),
                        platform: c.platform.clone(),
                    })
                    .collect(),
                blobs,
            });
        }
    }
    for (plan, t) in plans.iter().zip(targets) {
        for (repo, tags) in t {
            for tag in tags {
                registry
                    .put_manifest(repo, tag, &plan.root.media_type, &plan.root.bytes)
                    .await?;
                sent += plan.root.bytes.len() as u64;
            }
        }
    }
    Ok((reports, sent))
}

/// Where blobs may already be: the upload (staging) repository, and wherever this process
/// last saw them.
struct Known<'a> {
    upload_repo: &'a str,
    locations: &'a Locations,
}

async fn ensure_node(
    registry: &Arc<Registry>,
    node: &Node,
    repo: &str,
    known: &Known<'_>,
    outcomes: &mut HashMap<(String, Digest), Outcome>,
    report: &mut Vec<BlobReport>,
    sent: &mut u64,
) -> Result<(), PushError> {
    for child in &node.children {
        Box::pin(ensure_node(
            registry, child, repo, known, outcomes, report, sent,
        ))
        .await?;
    }
    for b in &node.blobs {
        let key = (repo.to_string(), b.digest.clone());
        let outcome = match outcomes.get(&key) {
            Some(o) => *o,
            None => {
                let o = ensure_blob(registry, &b.digest, &b.source, repo, known, sent).await?;
                outcomes.insert(key, o);
                o
            }
        };
        if !report.iter().any(|r| r.digest == b.digest) {
            report.push(BlobReport {
                digest: b.digest.clone(),
                size: b.size,
                media_type: b.media_type.clone(),
                outcome,
            });
        }
    }
    Ok(())
}

async fn ensure_blob(
    registry: &Arc<Registry>,
    digest: &Digest,
    source: &Source,
    repo: &str,
    known: &Known<'_>,
    sent: &mut u64,
) -> Result<Outcome, PushError> {
    let upload_repo = known.upload_repo;
    match source {
        Source::Foreign => Ok(Outcome::Foreign),
        Source::Archive(FileRec::Memory { bytes, .. }) => {
            if registry.blob_exists(repo, digest).await? {
                return Ok(Outcome::Exists);
            }
            if let Some(from) = known.locations.get(digest).filter(|f| f != repo) {
                // A declined or failed mount only means the bytes go up after all.
                if registry.mount(repo, digest, &from).await.unwrap_or(false) {
                    return Ok(Outcome::Mounted);
                }
            }
            if registry.put_blob(repo, digest, bytes.clone()).await? {
                *sent += bytes.len() as u64;
                Ok(Outcome::Uploaded)
            } else {
                Ok(Outcome::Exists)
            }
        }
        Source::Archive(FileRec::Streamed(done)) if done.placed.repo() == repo => {
            Ok(done.placed.outcome())
        }
        Source::Registry if upload_repo == repo => Ok(Outcome::Exists),
        Source::Archive(FileRec::Streamed(_)) | Source::Registry => {
            if registry.blob_exists(repo, digest).await? {
                return Ok(Outcome::Exists);
            }
            if registry.mount(repo, digest, upload_repo).await? {
                let uploaded_here = matches!(source, Source::Archive(FileRec::Streamed(d)) if matches!(d.placed, Placed::Uploaded(_)));
                return Ok(if uploaded_here {
                    Outcome::Uploaded
                } else {
                    Outcome::Mounted
                });
            }
            Err(PushError::Registry(
                crate::registry::RegistryError::Protocol {
                    op: format!("mount {digest} from {upload_repo} into {repo}"),
                    detail:
                        "the registry declined the mount and the blob's bytes are gone; push again"
                            .into(),
                },
            ))
        }
        Source::Archive(FileRec::Skipped) => Err(PushError::Internal {
            detail: format!("skipped file used as blob {digest}"),
        }),
    }
}

async fn put_manifests(
    registry: &Arc<Registry>,
    node: &Node,
    repo: &str,
    sent: &mut u64,
) -> Result<(), PushError> {
    for child in &node.children {
        Box::pin(put_manifests(registry, child, repo, sent)).await?;
    }
    registry
        .put_manifest(repo, node.digest.as_str(), &node.media_type, &node.bytes)
        .await?;
    *sent += node.bytes.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(names: &[&str], refs: &[&str]) -> Plan {
        Plan {
            label: "img".into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ref_names: refs.iter().map(|s| s.to_string()).collect(),
            root: super::super::images::Node {
                digest: Digest::sha256_of(b""),
                media_type: String::new(),
                bytes: bytes::Bytes::new(),
                rewritten: false,
                platform: None,
                children: vec![],
                blobs: vec![],
            },
        }
    }

    #[test]
    fn naming_rules() {
        let named = Target::Named {
            repository: "team/app".into(),
            tag: Some("1".into()),
        };
        let t = targets(
            &[plan(&["docker.io/x/y:v1"], &[])],
            &named,
            &["extra".into()],
        )
        .unwrap();
        assert_eq!(t[0]["team/app"], vec!["1", "extra"]);
        assert!(matches!(
            targets(&[plan(&[], &[]), plan(&[], &[])], &named, &[]),
            Err(PushError::ReferenceAmbiguous { count: 2 })
        ));
        let repo_only = Target::Named {
            repository: "team/app".into(),
            tag: None,
        };
        let t = targets(&[plan(&["x/y:v1", "x/z:v2"], &[])], &repo_only, &[]).unwrap();
        assert_eq!(t[0]["team/app"], vec!["v1", "v2"]);
        assert!(matches!(
            targets(&[plan(&[], &[])], &repo_only, &[]),
            Err(PushError::ReferenceMissing { .. })
        ));
        let t = targets(
            &[plan(&["docker.io/fixture/app:v1"], &["v1"])],
            &Target::FromArchive,
            &[],
        )
        .unwrap();
        assert_eq!(t[0]["fixture/app"], vec!["v1"]);
        assert!(matches!(
            targets(&[plan(&[], &["v1"])], &Target::FromArchive, &[]),
            Err(PushError::ReferenceMissing { .. })
        ));
        assert!(matches!(
            targets(&[plan(&["Bad:x"], &[])], &Target::FromArchive, &[]),
            Err(PushError::ReferenceInvalid { .. })
        ));
    }
}
