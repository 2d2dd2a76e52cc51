//! `archy --root DIR switch`: a node image realized offline, without
//! systemd: files, unit files and their [Install] links under DIR.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn archy(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_archy"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run archy")
}

const NODE: &str = r#"[
    file("/etc/demo/app.conf", #{ text: "port=1\n", mode: 0o640 }),
    dir("/var/lib/demo", #{ mode: 0o750 }),
    unit("demo.service", #{ Service: #{ ExecStart: "/usr/bin/demo /etc/demo/app.conf" }, Install: #{ WantedBy: "multi-user.target" } }),
]"#;

#[test]
fn switch_under_root_writes_an_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("image");
    std::fs::create_dir(&image).expect("image dir");
    std::fs::write(dir.path().join("node.rhai"), NODE).expect("node");
    let root = image.to_str().expect("utf-8");

    let out = archy(&["--root", root, "switch", "node.rhai"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("realized generation 1 under"), "{text}");

    let conf = image.join("etc/demo/app.conf");
    assert_eq!(std::fs::read_to_string(&conf).expect("conf"), "port=1\n");
    assert_eq!(
        std::fs::metadata(&conf).expect("meta").permissions().mode() & 0o7777,
        0o640
    );
    assert_eq!(
        std::fs::metadata(image.join("var/lib/demo"))
            .expect("dir")
            .permissions()
            .mode()
            & 0o7777,
        0o750
    );
    let unit =
        std::fs::read_to_string(image.join("etc/systemd/system/demo.service")).expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/bin/demo /etc/demo/app.conf"),
        "{unit}"
    );
    let link = image.join("etc/systemd/system/multi-user.target.wants/demo.service");
    assert_eq!(
        std::fs::read_link(link).expect("wants link"),
        Path::new("../demo.service")
    );
    assert_eq!(
        std::fs::read_link(image.join("var/lib/archy/current")).expect("current"),
        Path::new("generations/1")
    );

    // Again: nothing to do, nothing rewritten.
    let out = archy(&["--root", root, "switch", "node.rhai"], dir.path());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to do"));

    // Rollback acts on a running node only.
    let out = archy(&["--root", root, "rollback"], dir.path());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn containers_are_written_as_quadlet_files_and_their_images_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("image");
    std::fs::create_dir(&image).expect("image dir");
    std::fs::write(
        dir.path().join("node.rhai"),
        r#"[ network("appnet", #{}), container("web", #{ image: "localhost/web:1", network: "appnet" }) ]"#,
    )
    .expect("node");
    let out = archy(
        &[
            "--root",
            image.to_str().expect("utf-8"),
            "switch",
            "node.rhai",
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let quadlet = std::fs::read_to_string(image.join("etc/containers/systemd/web.container"))
        .expect("the Quadlet file");
    assert!(quadlet.contains("Image=localhost/web:1\n"), "{quadlet}");
    assert!(quadlet.contains("Network=appnet.network\n"), "{quadlet}");
    assert!(image.join("etc/containers/systemd/appnet.network").exists());
    // Quadlet makes its own [Install] links at boot: archy makes none.
    assert!(
        !image
            .join("etc/systemd/system/multi-user.target.wants")
            .exists()
    );
    // No podman here: the operator is told which images the image needs.
    assert!(stdout.contains("localhost/web:1"), "{stdout}");
}
