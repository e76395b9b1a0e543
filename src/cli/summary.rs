//! The short human summary `hoist push` prints without `--json`: one line per image pushed,
//! `team/app:1.0@sha256:… (3 blobs: 2 uploaded, 1 already there) in 4.2 s`.

use hoist::report::{ImageReport, Outcome, Report};

/// The summary of a report, lines ending in `\n`.
pub fn summary(report: &Report) -> String {
    let verb = if report.dry_run {
        "would push"
    } else {
        "pushed"
    };
    let mut out = String::new();
    for image in &report.images {
        out.push_str(&format!(
            "{verb} {} ({})",
            name(image),
            blobs(image, report.dry_run)
        ));
        if report.images.len() == 1 {
            out.push_str(&format!(" in {:.1} s", report.seconds));
        }
        out.push('\n');
    }
    if report.images.len() != 1 {
        out.push_str(&format!(
            "{verb} {} images in {:.1} s\n",
            report.images.len(),
            report.seconds
        ));
    }
    if report.dry_run {
        out.push_str("dry run: nothing was written to the registry\n");
    }
    out
}

/// `repository:tag1,tag2@digest`.
fn name(image: &ImageReport) -> String {
    let tags = if image.tags.is_empty() {
        String::new()
    } else {
        format!(":{}", image.tags.join(","))
    };
    format!("{}{tags}@{}", image.repository, image.digest)
}

/// `3 blobs: 2 uploaded, 1 already there`, naming only the outcomes that occur; a dry run
/// says `to upload`, `to mount`.
fn blobs(image: &ImageReport, dry_run: bool) -> String {
    let count = |o: Outcome| image.blobs.iter().filter(|b| b.outcome == o).count();
    let (uploaded, mounted) = match dry_run {
        true => ("to upload", "to mount"),
        false => ("uploaded", "mounted"),
    };
    let parts: Vec<String> = [
        (Outcome::Uploaded, uploaded),
        (Outcome::Exists, "already there"),
        (Outcome::Mounted, mounted),
        (Outcome::Foreign, "foreign"),
    ]
    .into_iter()
    .filter(|(o, _)| count(*o) > 0)
    .map(|(o, word)| format!("{} {word}", count(o)))
    .collect();
    let n = image.blobs.len();
    let plural = if n == 1 { "blob" } else { "blobs" };
    match parts.is_empty() {
        true => format!("{n} {plural}"),
        false => format!("{n} {plural}: {}", parts.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist::oci::Digest;
    use hoist::report::BlobReport;

    fn blob(seed: &[u8], outcome: Outcome) -> BlobReport {
        BlobReport {
            digest: Digest::sha256_of(seed),
            size: 1,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            outcome,
        }
    }

    fn image(tags: &[&str], blobs: Vec<BlobReport>) -> ImageReport {
        ImageReport {
            repository: "team/app".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            digest: Digest::sha256_of(b"manifest"),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            manifest_rewritten: false,
            manifests: Vec::new(),
            blobs,
        }
    }

    fn report(images: Vec<ImageReport>, dry_run: bool) -> Report {
        Report {
            dry_run,
            replayed: false,
            client: "cli".into(),
            images,
            bytes_received: 0,
            bytes_sent: 0,
            seconds: 4.21,
        }
    }

    #[test]
    fn one_image_one_line_with_its_blobs_and_time() {
        let blobs = vec![
            blob(b"a", Outcome::Uploaded),
            blob(b"b", Outcome::Uploaded),
            blob(b"c", Outcome::Exists),
        ];
        let r = report(vec![image(&["1.0"], blobs)], false);
        let digest = Digest::sha256_of(b"manifest");
        assert_eq!(
            summary(&r),
            format!(
                "pushed team/app:1.0@{digest} (3 blobs: 2 uploaded, 1 already there) in 4.2 s\n"
            )
        );
    }

    #[test]
    fn several_images_and_dry_runs_say_so() {
        let one = image(&["1", "latest"], vec![blob(b"a", Outcome::Mounted)]);
        let untagged = image(&[], vec![]);
        let text = summary(&report(vec![one, untagged], true));
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("would push team/app:1,latest@sha256:"),
            "{text}"
        );
        assert!(lines[0].ends_with("(1 blob: 1 to mount)"), "{text}");
        assert!(
            lines[1].starts_with("would push team/app@sha256:"),
            "{text}"
        );
        assert!(lines[1].ends_with("(0 blobs)"), "{text}");
        assert_eq!(lines[2], "would push 2 images in 4.2 s");
        assert_eq!(lines[3], "dry run: nothing was written to the registry");
    }
}
