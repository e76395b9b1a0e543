//! Naming: which repositories and tags each image goes to, decided for every image before
//! anything is published. From the URL (`/push/REPO[:TAG]`), or from the names the archive
//! carries (docker `RepoTags`, OCI ref names), plus `?tag=`.

use std::collections::BTreeMap;

use super::error::PushError;
use super::request::Target;
use crate::auth::{AuthError, Client};
use crate::image::Image;
use crate::oci::reference;

/// Where one image goes: repository → tags.
pub type Targets = BTreeMap<String, Vec<String>>;

/// Decides every image's repositories and tags, before anything is published: at most
/// `max_tags` tags in all, and no tag that two images would both claim (only the last would
/// keep it, and the report would lie about the others).
pub fn targets(
    images: &[Image],
    target: &Target,
    extra_tags: &[String],
    max_tags: usize,
) -> Result<Vec<Targets>, PushError> {
    let decided = decide(images, target, extra_tags)?;
    let count: usize = decided.iter().flat_map(|t| t.values()).map(Vec::len).sum();
    if count > max_tags {
        return Err(PushError::TooManyTags {
            count,
            limit: max_tags,
        });
    }
    let mut claimed = std::collections::HashSet::new();
    for (repository, tag) in decided.iter().flat_map(|t| {
        t.iter()
            .flat_map(|(r, tags)| tags.iter().map(move |tag| (r, tag)))
    }) {
        if !claimed.insert((repository, tag)) {
            return Err(PushError::TagConflict {
                repository: repository.clone(),
                tag: tag.clone(),
            });
        }
    }
    Ok(decided)
}

fn decide(
    images: &[Image],
    target: &Target,
    extra_tags: &[String],
) -> Result<Vec<Targets>, PushError> {
    if let Target::Named { tag: Some(_), .. } = target
        && images.len() > 1
    {
        return Err(PushError::ReferenceAmbiguous {
            count: images.len(),
        });
    }
    let mut out = Vec::new();
    for image in images {
        let names = archive_names(image)?;
        let mut t = match target {
            Target::Named { repository, tag } => {
                let tags = match tag {
                    Some(tag) => vec![tag.clone()],
                    None => names.iter().filter_map(|n| n.tag.clone()).collect(),
                };
                BTreeMap::from([(repository.clone(), tags)])
            }
            Target::FromArchive => from_archive(&names),
        };
        for tags in t.values_mut() {
            tags.extend(extra_tags.iter().cloned());
            tags.sort();
            tags.dedup();
        }
        t.retain(|_, tags| !tags.is_empty());
        if t.is_empty() {
            return Err(PushError::ReferenceMissing {
                image: image.label.clone(),
            });
        }
        out.push(t);
    }
    Ok(out)
}

/// The names an image carries, validated.
fn archive_names(image: &Image) -> Result<Vec<reference::ImageName>, PushError> {
    let mut names = Vec::new();
    for n in &image.names {
        names.push(reference::parse_image_name(n).map_err(|_| invalid("archive image name", n))?);
    }
    for n in &image.ref_names {
        names.push(reference::parse_ref_name(n).map_err(|_| invalid("archive ref name", n))?);
    }
    Ok(names)
}

/// `/push`: each name's repository and tag; a bare ref name (a tag) applies to the
/// repositories the other names give.
fn from_archive(names: &[reference::ImageName]) -> Targets {
    let repos: Vec<String> = names.iter().filter_map(|n| n.repository.clone()).collect();
    let mut t: Targets = BTreeMap::new();
    for n in names {
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
    t
}

/// Every repository the push would write to must be in the client's scopes; `?tag=` only
/// adds tags to repositories already decided, so it cannot widen this.
pub fn authorize(targets: &[Targets], client: &Client) -> Result<(), PushError> {
    for repository in targets.iter().flat_map(|t| t.keys()) {
        authorize_one(repository, client)?;
    }
    Ok(())
}

/// One repository against the client's scopes.
pub fn authorize_one(repository: &str, client: &Client) -> Result<(), PushError> {
    if client.may_push(repository) {
        return Ok(());
    }
    Err(AuthError::Denied {
        client: client.name.clone(),
        repository: repository.chars().take(300).collect(),
    }
    .into())
}

fn invalid(what: &'static str, name: &str) -> PushError {
    PushError::ReferenceInvalid {
        what,
        name: name.chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(names: &[&str], refs: &[&str]) -> Image {
        Image {
            label: "img".into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ref_names: refs.iter().map(|s| s.to_string()).collect(),
            root: std::sync::Arc::new(crate::image::Node {
                digest: crate::oci::Digest::sha256_of(b""),
                media_type: String::new(),
                bytes: bytes::Bytes::new(),
                rewritten: false,
                children: vec![],
                blobs: vec![],
            }),
        }
    }

    #[test]
    fn naming_rules() {
        let named = Target::Named {
            repository: "team/app".into(),
            tag: Some("1".into()),
        };
        let t = targets(
            &[image(&["docker.io/x/y:v1"], &[])],
            &named,
            &["extra".into()],
            64,
        )
        .unwrap();
        assert_eq!(t[0]["team/app"], vec!["1", "extra"]);
        assert!(matches!(
            targets(&[image(&[], &[]), image(&[], &[])], &named, &[], 64),
            Err(PushError::ReferenceAmbiguous { count: 2 })
        ));
        let repo_only = Target::Named {
            repository: "team/app".into(),
            tag: None,
        };
        let t = targets(&[image(&["x/y:v1", "x/z:v2"], &[])], &repo_only, &[], 64).unwrap();
        assert_eq!(t[0]["team/app"], vec!["v1", "v2"]);
        assert!(matches!(
            targets(&[image(&[], &[])], &repo_only, &[], 64),
            Err(PushError::ReferenceMissing { .. })
        ));
        let t = targets(
            &[image(&["docker.io/fixture/app:v1"], &["v1"])],
            &Target::FromArchive,
            &[],
            64,
        )
        .unwrap();
        assert_eq!(t[0]["fixture/app"], vec!["v1"]);
        assert!(matches!(
            targets(&[image(&[], &["v1"])], &Target::FromArchive, &[], 64),
            Err(PushError::ReferenceMissing { .. })
        ));
        assert!(matches!(
            targets(&[image(&["Bad:x"], &[])], &Target::FromArchive, &[], 64),
            Err(PushError::ReferenceInvalid { .. })
        ));
    }

    #[test]
    fn tags_are_bounded_and_never_claimed_twice() {
        let repo_only = Target::Named {
            repository: "team/app".into(),
            tag: None,
        };
        let two = [image(&["x/y:v1"], &[]), image(&["x/z:v2"], &[])];
        assert!(matches!(
            targets(&two, &repo_only, &["x".into()], 64),
            Err(PushError::TagConflict { ref tag, .. }) if tag == "x"
        ));
        assert!(targets(&two, &repo_only, &[], 64).is_ok());
        assert!(matches!(
            targets(&two, &repo_only, &[], 1),
            Err(PushError::TooManyTags { count: 2, limit: 1 })
        ));
    }
}
