//! Naming: which repositories and tags each image goes to, decided for every image before
//! anything is published. From the URL (`/push/REPO[:TAG]`), or from the names the archive
//! carries (docker `RepoTags`, OCI ref names), plus `?tag=`.

use std::collections::BTreeMap;

use super::error::PushError;
use super::request::Target;
use crate::image::Image;
use crate::oci::reference;

/// Where one image goes: repository → tags.
pub type Targets = BTreeMap<String, Vec<String>>;

/// Decides every image's repositories and tags, before anything is published.
pub fn targets(
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
            root: crate::image::Node {
                digest: crate::oci::Digest::sha256_of(b""),
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
            &[image(&["docker.io/x/y:v1"], &[])],
            &named,
            &["extra".into()],
        )
        .unwrap();
        assert_eq!(t[0]["team/app"], vec!["1", "extra"]);
        assert!(matches!(
            targets(&[image(&[], &[]), image(&[], &[])], &named, &[]),
            Err(PushError::ReferenceAmbiguous { count: 2 })
        ));
        let repo_only = Target::Named {
            repository: "team/app".into(),
            tag: None,
        };
        let t = targets(&[image(&["x/y:v1", "x/z:v2"], &[])], &repo_only, &[]).unwrap();
        assert_eq!(t[0]["team/app"], vec!["v1", "v2"]);
        assert!(matches!(
            targets(&[image(&[], &[])], &repo_only, &[]),
            Err(PushError::ReferenceMissing { .. })
        ));
        let t = targets(
            &[image(&["docker.io/fixture/app:v1"], &["v1"])],
            &Target::FromArchive,
            &[],
        )
        .unwrap();
        assert_eq!(t[0]["fixture/app"], vec!["v1"]);
        assert!(matches!(
            targets(&[image(&[], &["v1"])], &Target::FromArchive, &[]),
            Err(PushError::ReferenceMissing { .. })
        ));
        assert!(matches!(
            targets(&[image(&["Bad:x"], &[])], &Target::FromArchive, &[]),
            Err(PushError::ReferenceInvalid { .. })
        ));
    }
}
