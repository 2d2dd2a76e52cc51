//! podman-api's models (generated from podman's swagger file, every field
//! optional) into this crate's small, complete types. Only list models are
//! used: they parse what podman 5.4 sends, unlike some inspect models (the
//! container one expects a number where podman 5 sends a string).

use podman_api::models::{LibpodImageSummary, ListContainer, SecretInfoReport};

use crate::{ContainerInfo, ImageInfo};

/// An id without the `sha256:` the Docker-compatible API puts before it.
fn bare_id(id: Option<String>) -> String {
    let id = id.unwrap_or_default();
    match id.strip_prefix("sha256:") {
        Some(bare) => bare.to_owned(),
        None => id,
    }
}

pub(crate) fn image(summary: LibpodImageSummary) -> ImageInfo {
    // `RepoTags` is what `podman images` shows; podman leaves it out for a
    // dangling image, and some tools write `<none>:<none>` instead.
    let names = summary
        .repo_tags
        .unwrap_or_default()
        .into_iter()
        .filter(|name| name != "<none>:<none>")
        .collect();
    ImageInfo {
        id: bare_id(summary.id),
        names,
        digests: summary.repo_digests.unwrap_or_default(),
    }
}

pub(crate) fn container(listed: ListContainer) -> ContainerInfo {
    let name = listed
        .names
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|name| name.trim_start_matches('/').to_owned())
        .unwrap_or_default();
    ContainerInfo {
        id: bare_id(listed.id),
        name,
        state: listed.state.unwrap_or_default(),
        image_id: bare_id(listed.image_id),
        image: listed.image.unwrap_or_default(),
        labels: listed.labels.unwrap_or_default().into_iter().collect(),
    }
}

/// The secret's name; `None` for a report without one (podman always
/// sends it).
pub(crate) fn secret_name(report: SecretInfoReport) -> Option<String> {
    report.spec.and_then(|spec| spec.name)
}

/// podman's error line in a build or pull stream (`{"error": "...",
/// "errorDetail": {"message": "..."}}`) as one message. podman-api's model
/// of it prints both halves, which podman makes the same text.
pub(crate) fn stream_error(error: &podman_api::models::JsonError) -> String {
    let value = serde_json::to_value(error).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().map(str::trim).unwrap_or_default().to_owned();
    let error = text(&value["error"]);
    if error.is_empty() {
        text(&value["errorDetail"]["message"])
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// What podman 5.4.2 answered on a test node (`GET
    /// /libpod/containers/json?all=true`): a created, an exited and two
    /// running containers, one with a published port.
    const CONTAINERS: &str = include_str!("../fixtures/podman-5.4-containers.json");
    /// `GET /libpod/images/json`: busybox, one tagged build, two dangling.
    const IMAGES: &str = include_str!("../fixtures/podman-5.4-images.json");
    /// `GET /libpod/secrets/json`.
    const SECRETS: &str = include_str!("../fixtures/podman-5.4-secrets.json");

    fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    const BUSYBOX_ID: &str = "f07af6928e4cbcf5cc824ed8da5ed2f117aece3df99f8deb6b556ab4758c2919";

    #[test]
    fn podman_5_4_container_lists_parse() {
        let listed: Vec<ListContainer> = serde_json::from_str(CONTAINERS).unwrap();
        let containers: Vec<ContainerInfo> = listed.into_iter().map(container).collect();
        let summary: Vec<(&str, &str)> = containers
            .iter()
            .map(|c| (c.name.as_str(), c.state.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("c2", "created"),
                ("c3", "exited"),
                ("usesec", "running"),
                ("web", "running")
            ]
        );
        let web = &containers[3];
        assert_eq!(web.image_id, BUSYBOX_ID);
        assert_eq!(web.image, "localhost/testbed/busybox:latest");
        assert_eq!(web.labels, labels([("io.archy.owner", "archy")]));
        assert_eq!(web.id.len(), 64, "{web:?}");
        assert!(web.is_running() && !containers[1].is_running());
        assert!(containers[0].labels.is_empty());
    }

    #[test]
    fn podman_5_4_image_lists_parse() {
        let listed: Vec<LibpodImageSummary> = serde_json::from_str(IMAGES).unwrap();
        let images: Vec<ImageInfo> = listed.into_iter().map(image).collect();
        assert_eq!(images.len(), 4, "{images:?}");
        let busybox = images.iter().find(|i| i.id == BUSYBOX_ID).unwrap();
        assert_eq!(busybox.names, ["localhost/testbed/busybox:latest"]);
        // A local image has a digest too, so it answers to `name@sha256:`.
        let pinned = "localhost/testbed/busybox@sha256:f32c8310a8bd6564342d072f966a60650d22f84a256ab1d4a97f4d8ad77607c3";
        assert_eq!(busybox.digests, [pinned]);
        assert!(busybox.answers_to(pinned));
        assert!(busybox.answers_to("localhost/testbed/busybox:latest"));
        assert!(busybox.answers_to(BUSYBOX_ID));
        assert!(!busybox.answers_to(&pinned.replace("f32c", "0000")));
        assert!(!busybox.answers_to(&pinned.replace("busybox@", "other@")));
        let dangling = images.iter().filter(|i| i.names.is_empty()).count();
        assert_eq!(dangling, 2, "{images:?}");
        assert!(images.iter().all(|i| i.id.len() == 64), "{images:?}");
    }

    #[test]
    fn podman_5_4_secret_lists_parse() {
        let listed: Vec<SecretInfoReport> = serde_json::from_str(SECRETS).unwrap();
        let names: Vec<String> = listed.into_iter().filter_map(secret_name).collect();
        assert_eq!(names, ["s2"]);
    }

    #[test]
    fn docker_style_ids_and_names_are_made_bare() {
        let listed = ListContainer {
            id: Some("sha256:abc".into()),
            names: Some(vec!["/old-style".into()]),
            ..serde_json::from_str("{}").unwrap()
        };
        let info = container(listed);
        assert_eq!((info.id.as_str(), info.name.as_str()), ("abc", "old-style"));
        let untagged = LibpodImageSummary {
            id: Some("sha256:def".into()),
            repo_tags: Some(vec!["<none>:<none>".into()]),
            ..serde_json::from_str("{}").unwrap()
        };
        assert_eq!(
            image(untagged),
            ImageInfo {
                id: "def".into(),
                names: vec![],
                digests: vec![]
            }
        );
    }

    #[test]
    fn stream_errors_read_as_one_message() {
        let line = r#"{"errorDetail":{"message":"building at STEP \"RUN false\": exit status 1\n"},"error":"building at STEP \"RUN false\": exit status 1\n"}"#;
        let error: podman_api::models::JsonError = serde_json::from_str(line).unwrap();
        assert_eq!(
            stream_error(&error),
            r#"building at STEP "RUN false": exit status 1"#
        );
        let detail_only: podman_api::models::JsonError =
            serde_json::from_str(r#"{"errorDetail":{"message":"no space"}}"#).unwrap();
        assert_eq!(stream_error(&detail_only), "no space");
    }
}
